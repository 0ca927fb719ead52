"""NC curves of one or more runs, overlaid (matplotlib, Agg backend)."""

from __future__ import annotations

from itertools import cycle
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from nclab.runs import Run

# (title, keys drawn in the panel, log scale)
PANELS = [
    ("NC1  tr(Σ_W Σ_B⁺)/K", ["nc1"], True),
    ("NC2 means  ETF(H̄)", ["nc2_h"], False),
    ("NC2 classifier  ETF(W)", ["nc2_w"], False),
    ("NC3  WH̄ᵀ vs ETF", ["nc3"], False),
    ("NC4  NCC ≠ network", ["nc4_ncc"], False),
    ("accuracy (— train, -- test)", ["train_acc", "test_acc"], False),
]


def plot_runs(runs: list[Run], out: Path | None = None) -> Path:
    """Write figures/nc.png into the first run (or `out`); one colour per run, legend by run name."""
    out = out or runs[0].path / "figures" / "nc.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    for color, run in zip(cycle(plt.rcParams["axes.prop_cycle"].by_key()["color"]), runs, strict=False):
        records = run.metrics()
        epochs = [r["epoch"] for r in records]
        for ax, (title, keys, log) in zip(axes.flat, PANELS, strict=True):
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
    axes.flat[0].legend(fontsize=8)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
