"""Figures of one or more runs (matplotlib, Agg backend), written into the first run's figures/:

- nc.png: the default overview (NC1-NC4 and accuracy, runs overlaid);
- curves.png: any metrics.jsonl keys, one panel each, runs overlaid (default: the keys the metric table
  marks `curve`; log scale where it marks `log`);
- grid.png: the papers' 2x2 grid NC1 / NC2 / NC3 / NC4 (Zhu et al. 2021, Zhou et al. 2022 keys);
- scores.png: violin plots of positive scores, negative scores and biases per epoch (BCE vs CE, 2025),
  from the samples measure.py stores in scores/.
"""

from __future__ import annotations

from itertools import cycle
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from nclab.errors import NclabError
from nclab.metrics import table
from nclab.runs import Run

# (title, keys drawn in the panel); the log scale of a panel is its first key's (metrics.table)
PANELS = [
    ("NC1  tr(Σ_W Σ_B⁺)/K", ["nc1"]),
    ("NC2 means  ETF(H̄)", ["nc2_h"]),
    ("NC2 classifier  ETF(W)", ["nc2_w"]),
    ("NC3  WH̄ᵀ vs ETF", ["nc3"]),
    ("NC4  NCC ≠ network", ["nc4_ncc"]),
    ("accuracy (— train, -- test)", ["train_acc", "test_acc"]),
]
GRID = [
    ("NC1  tr(Σ_W Σ_B⁺)/K", ["nc1"]),
    ("NC2  ETF(W)", ["nc2_w"]),
    ("NC3  W H̄ᵀ vs ETF", ["nc3"]),
    ("NC4  ||W μ_G + b||", ["nc4_bias"]),
]
SCORE_POPULATIONS = [
    ("score_pos", "positive scores", "tab:red"),
    ("score_neg", "negative scores", "tab:blue"),
    ("bias", "biases", "tab:green"),
]


def _panels(runs: list[Run], axes, panels: list[tuple[str, list[str]]]) -> None:
    """Draw each (title, keys) panel with one colour per run, keys styled - and --; log axis where the
    metric table says so for the panel's first key."""
    for color, run in zip(cycle(plt.rcParams["axes.prop_cycle"].by_key()["color"]), runs, strict=False):
        records = run.metrics()
        epochs = [r["epoch"] for r in records]
        for ax, (title, keys) in zip(axes, panels, strict=False):
            log = table.metric(keys[0]).log
            for key, style in zip(keys, ["-", "--"], strict=False):
                values = [r.get(key) for r in records]
                points = [
                    (e, v)
                    for e, v in zip(epochs, values, strict=True)
                    if v is not None and (v > 0 or not log)
                ]
                if points:
                    ax.plot(
                        *zip(*points, strict=True),
                        style,
                        color=color,
                        label=run.name if style == "-" else None,
                    )
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            if log:
                ax.set_yscale("log")


def _save(fig, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_runs(runs: list[Run], out: Path | None = None) -> Path:
    """Write figures/nc.png into the first run (or `out`); one colour per run, legend by run name."""
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    _panels(runs, axes.flat, PANELS)
    axes.flat[0].legend(fontsize=8)
    return _save(fig, out or runs[0].path / "figures" / "nc.png")


def plot_curves(runs: list[Run], metrics: list[str] | None = None, out: Path | None = None) -> Path:
    """figures/curves.png: one panel per metric key, runs overlaid."""
    metrics = metrics or table.keys("curve")
    known = set().union(*(r.keys() for run in runs for r in run.metrics()))
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise NclabError(
            f"--metrics {','.join(unknown)}: not in metrics.jsonl; available: {', '.join(sorted(known))}"
        )
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.3 * cols, 3.5 * rows), constrained_layout=True, squeeze=False
    )
    _panels(runs, axes.flat, [(m, [m]) for m in metrics])
    for ax in axes.flat[len(metrics) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    return _save(fig, out or runs[0].path / "figures" / "curves.png")


def plot_grid(runs: list[Run], out: Path | None = None) -> Path:
    """figures/grid.png: the 2x2 NC1-NC4 figure of Zhu et al. 2021 / Zhou et al. 2022."""
    fig, axes = plt.subplots(2, 2, figsize=(9, 7), constrained_layout=True)
    _panels(runs, axes.flat, GRID)
    axes.flat[0].legend(fontsize=8)
    return _save(fig, out or runs[0].path / "figures" / "grid.png")


def pick_evenly(epochs: list[int], count: int) -> list[int]:
    """`count` evenly spaced entries of a sorted list, first and last included."""
    if len(epochs) <= count:
        return epochs
    return [epochs[round(i * (len(epochs) - 1) / (count - 1))] for i in range(count)]


def plot_scores(
    runs: list[Run], epochs: list[int] | None = None, out: Path | None = None, count: int = 6
) -> Path:
    """figures/scores.png: per run a panel of violins (positive scores, negative scores, biases) per epoch."""
    fig, axes = plt.subplots(len(runs), 1, figsize=(max(6, 1.6 * count + 2), 3.6 * len(runs)), squeeze=False)
    for ax, run in zip(axes.flat, runs, strict=False):
        saved = run.array_epochs("scores")
        chosen = sorted(set(epochs) & set(saved)) if epochs else pick_evenly(saved, count)
        if not chosen:
            raise NclabError(
                f"{run.path} has no score samples for epochs {epochs or 'any'} (scores/ holds {saved}); "
                "runs with a linear classifier store them every measured epoch, or run `nclab measure` first"
            )
        for i, epoch in enumerate(chosen):
            arrays = run.load_arrays("scores", epoch)
            for j, (key, label, color) in enumerate(SCORE_POPULATIONS):
                if key in arrays:
                    parts = ax.violinplot(arrays[key].numpy(), positions=[i + (j - 1) * 0.28], widths=0.25)
                    for body in parts["bodies"]:
                        body.set_color(color)
                    for name in ("cbars", "cmins", "cmaxes"):
                        parts[name].set_color(color)
                    if i == 0:
                        ax.plot([], [], color=color, label=label)
        ax.set_xticks(np.arange(len(chosen)), [str(e) for e in chosen])
        ax.set_xlabel("epoch")
        ax.set_ylabel("score w_k·h; bias b of z = w_k·h ± b")
        ax.set_title(run.name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out or runs[0].path / "figures" / "scores.png")
