"""Figures of a set of runs (matplotlib, Agg backend), `nclab plot --kind KIND`, written as
`figures/<kind>.<png|pdf|svg>` into the first run (or `--out`):

- nc: the overview (NC1, NC2 of means and classifier, NC3, NC4 as NCC mismatch, accuracy);
- curves: any metrics.jsonl keys, one panel each (default: the keys the metric table marks `curve`);
- grid: the 2x2 NC1-NC4 figure of Zhu et al. 2021 / Zhou et al. 2022, one line per optimizer / setting;
- heatmap: final NC metrics and test accuracy over two config keys (`--x model.width --y train.epochs`), one
  row of panels per remaining setting (per loss in Zhou et al. 2022's heat maps); `--baseline loss=ce` draws
  each other row's absolute difference to that row (the paper's |Acc_CE - Acc_loss| maps);
- scores: violins of positive scores s_{i,y_i}, negative scores s_{i,k!=y_i} and biases b_k (BCE vs CE, 2025),
  per epoch, or against a config key across runs (`--x head.bias_mean`, the initial bias mean);
- embed: the 2-D feature frames of `nclab visualize` for each run (report/embed.py);
- frequency: per-class vectors of the last saved `classes/` epoch (nc1_class, nc3_cos, nc4_ncc) against the
  class's frequency rank (log x), the mean over log-spaced rank bins, one line per setting (language models:
  Wu & Papyan 2024);
- correlate: each run's final value of a metric (`--metrics`, default cdnv, nc1, nc2_h, test_nc4_ncc)
  against its final test loss, one point per run, Spearman and Pearson over the runs of each facet (`--x KEY`:
  one row per value of KEY), as Linguistic Collapse's figures 2-4.

Runs equal up to `seed` are one line: the mean over seeds with a shaded min-max (or +-1 std) band. Lines
take the Okabe-Ito colour-blind-safe palette, legend entries name the config keys that differ between the
settings (report/groups.py), y-labels give the metric's key and definition and the axis is logarithmic where
the metric table (metrics/table.py) says so, epoch ticks are integers.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from itertools import pairwise, product
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nclab.errors import ConfigError, RunError
from nclab.files import replace
from nclab.metrics import table
from nclab.report.groups import Group, group_runs, setting_keys, short
from nclab.runs import Run

__all__ = [
    "BANDS", "FORMATS", "KINDS", "correlate_figure", "curves_figure", "frequency_figure", "heatmap_figure",
    "paper_style", "pick_evenly", "plot", "render_png", "save", "scores_figure",
]  # fmt: skip

FORMATS = ("png", "pdf", "svg")
KINDS = ("nc", "curves", "grid", "heatmap", "scores", "embed", "frequency", "correlate")
BANDS = ("minmax", "std", "none")
# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
LINESTYLES = ["-", "--", ":", "-."]  # the 2nd key of a panel (test_acc) and groups beyond the palette
COLUMN = 3.4  # inches: one column of a two-column paper; figures with 3 panel columns span both (7 in)
PANEL_HEIGHT = 1.7
STYLE: dict[str, Any] = {
    "font.family": "serif",
    "font.serif": ["DejaVu Serif"],
    "mathtext.fontset": "dejavuserif",
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "xtick.labelsize": 6.5,
    "ytick.labelsize": 6.5,
    "legend.fontsize": 6.5,
    "lines.linewidth": 1.2,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "savefig.dpi": 300,
    "pdf.fonttype": 42,  # TrueType in PDF, as publishers ask
    "svg.fonttype": "none",  # SVG text stays text
}
NC_PANELS = [["nc1"], ["nc2_h"], ["nc2_w"], ["nc3"], ["nc4_ncc"], ["train_acc", "test_acc"]]
GRID_PANELS = [["nc1"], ["nc2_w"], ["nc3"], ["nc4_bias"]]
HEATMAP = ["nc1", "nc2_w", "nc3", "nc4_bias", "test_acc"]
SCORE_POPULATIONS = [
    ("score_pos", "positive $s_{i,y_i}$", PALETTE[1]),
    ("score_neg", "negative $s_{i,k\\neq y_i}$", PALETTE[0]),
    ("bias", "bias $b_k$", PALETTE[2]),
]


def metric_label(key: str) -> str:
    """`key: definition` from the metric table (metrics/table.py)."""
    return f"{key}: {table.metric(key).description}"


@contextmanager
def paper_style() -> Iterator[None]:
    """The paper style (serif, 7 pt at one-column width, colour-blind-safe cycle): build and save in it."""
    with plt.rc_context(STYLE):
        yield


def _wrap(text: str, width: int = 40) -> str:
    """Panel titles and labels broken into lines that fit a panel."""
    return "\n".join(textwrap.wrap(text, width))


def _subplots(n: int, cols: int | None = None) -> tuple[Figure, list[Axes]]:
    """`n` panels, `cols` per row (default up to 3): one column wide for <= 2 panel columns, else two."""
    cols = cols or min(3, n)
    rows = -(-n // cols)
    width = COLUMN if cols <= 2 else 2 * COLUMN
    fig, axes = plt.subplots(
        rows, cols, figsize=(width, PANEL_HEIGHT * rows + 0.3), squeeze=False, layout="constrained"
    )
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def _band(values: np.ndarray, band: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) over seeds (axis 0), NaN-aware: low/high are the min/max, or mean -+ the sample
    std (ddof=1)."""
    with warnings.catch_warnings():  # an epoch no seed has a value for stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, 0)
        if band == "std":
            std = np.nanstd(values, 0, ddof=1) if len(values) > 1 else np.zeros_like(mean)
            return mean, mean - std, mean + std
        return mean, np.nanmin(values, 0), np.nanmax(values, 0)


def _legend(fig: Figure, groups: list[Group], extra: list[tuple[str, str]] = ()) -> None:
    """One legend for the figure above the panels: a line per group (`n seeds` when several), then the
    key styles of multi-key panels."""
    handles = [
        plt.Line2D([], [], color=_color(i), linestyle=_style(i, 0))
        for i in range(len(groups))
        if len(groups) > 1 or len(groups[0].runs) > 1
    ]
    labels = [
        g.label + (f" ({len(g.runs)} seeds)" if len(g.runs) > 1 else "") for g in groups[: len(handles)]
    ]
    for style, text in extra:
        handles.append(plt.Line2D([], [], color="0.3", linestyle=style))
        labels.append(text)
    if handles:
        fits = int(fig.get_figwidth() * 14 // (max(map(len, labels)) + 5))  # ~14 characters an inch
        fig.legend(handles, labels, loc="outside upper center", ncols=max(1, min(fits, 3)), frameon=False)


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _style(group: int, key: int) -> str:
    return LINESTYLES[(key + group // len(PALETTE)) % len(LINESTYLES)]


def x_label(groups: list[Group]) -> str:
    """The time axis: `iteration` for UFM simulations (their record's `epoch` counts iterations)."""
    return "iteration" if all(g.config.get("kind") == "ufm" for g in groups) else "epoch"


def _draw_panels(axes: list[Axes], groups: list[Group], panels: list[list[str]], band: str) -> None:
    """Every panel gets one line per group (mean over its seeds) and key (2nd key dashed), with a band."""
    for ax, keys in zip(axes, panels, strict=True):
        log = any(table.metric(k).log for k in keys)
        for i, group in enumerate(groups):
            for j, key in enumerate(keys):
                epochs, values = group.series(key)
                if log:
                    values = np.where(values > 0, values, np.nan)
                mean, low, high = _band(values, band)
                ax.plot(epochs, mean, _style(i, j), color=_color(i), label=group.label)
                if len(group.runs) > 1 and band != "none":
                    ax.fill_between(epochs, low, high, color=_color(i), alpha=0.2, linewidth=0)
        ax.set_ylabel(_wrap(metric_label(keys[0]), 32) if len(keys) == 1 else "accuracy")
        ax.set_xlabel(x_label(groups))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log:
            ax.set_yscale("log")


def curves_figure(groups: list[Group], panels: list[list[str]], band: str = "minmax") -> Figure:
    """One panel per entry of `panels` (a list of metrics.jsonl keys drawn together), groups overlaid; a key
    no run has leaves its panel empty."""
    if band not in BANDS:
        raise ConfigError(f"--band {band}: choose from {', '.join(BANDS)}")
    fig, axes = _subplots(len(panels), 2 if len(panels) == 4 else None)
    _draw_panels(axes, groups, panels, band)
    widest = max(panels, key=len)  # a panel of two keys (accuracy): solid and dashed in the legend
    _legend(fig, groups, list(zip(LINESTYLES, widest, strict=False)) if len(widest) > 1 else [])
    return fig


def _check_metrics(groups: list[Group], metrics: list[str]) -> None:
    """`--metrics` names keys of metrics.jsonl; one error line listing the available keys otherwise."""
    known = set().union(*(r.keys() for g in groups for recs in g.records for r in recs))
    unknown = [k for k in metrics if k not in known]
    if unknown:
        raise ConfigError(
            f"--metrics {','.join(unknown)}: not in metrics.jsonl; available: {', '.join(sorted(known))}"
        )


def _levels(groups: list[Group], key: str) -> list[Any]:
    """The distinct values of config key `key`: numbers ascending, then others by their text, None last."""
    unique = list({repr(g.config.get(key)): g.config.get(key) for g in groups}.values())

    def order(v: Any) -> tuple:
        number = isinstance(v, int | float)
        return v is None, not number, v if number else repr(v)

    return sorted(unique, key=order)


def _check_keys(groups: list[Group], keys: dict[str, str | None]) -> None:
    """Each `--flag KEY` names a config key; one error line listing the keys that differ otherwise."""
    for flag, key in keys.items():
        if key is None or not any(key in g.config for g in groups):
            differ = ", ".join(setting_keys(groups)) or "none: the runs differ only in seed"
            what = "is missing" if key is None else f"{key}: not a config key of these runs"
            raise ConfigError(f"{flag} {what}; give a dotted config key (differing here: {differ})")


def _facets(groups: list[Group], used: list[str]) -> list[tuple[str, list[Group]]]:
    """Groups split by the differing keys other than `used`: (title, groups), first-seen order."""
    keys = [k for k in setting_keys(groups) if k not in used]
    facets: dict[str, list[Group]] = {}
    for g in groups:
        title = ", ".join(f"{short(k)}={g.config[k]}" for k in keys if k in g.config)
        facets.setdefault(title, []).append(g)
    return list(facets.items())


def _cells(members: list[Group], x: str, y: str, xs: list, ys: list, metric: str) -> np.ndarray:
    """(len(ys), len(xs)): per (x value, y value) the mean over seeds of the members' final `metric`."""
    cells = np.full((len(ys), len(xs)), np.nan)
    for (i, yv), (j, xv) in product(enumerate(ys), enumerate(xs)):
        finals = [g.final(metric) for g in members if g.config.get(x) == xv and g.config.get(y) == yv]
        if finals and not np.isnan(np.concatenate(finals)).all():
            cells[i, j] = np.nanmean(np.concatenate(finals))
    return cells


def _split_baseline(
    groups: list[Group], facets: list[tuple[str, list[Group]]], text: str
) -> tuple[list[Group], list[tuple[str, list[Group]]]]:
    """`--baseline key=value` (`loss=ce`): (the facet whose settings have that value, the other facets)."""
    from nclab.config import canonical_key, parse_override

    key, value = parse_override(text)
    key = canonical_key(key)
    _check_keys(groups, {"--baseline": key})
    chosen = [f for f in facets if all(g.config.get(key) == value for g in f[1])]
    if len(chosen) != 1 or len(facets) < 2:
        rows = "; ".join(title for title, _ in facets) or "one row"
        raise ConfigError(f"--baseline {text}: not one row of the heat maps (rows: {rows})")
    return chosen[0][1], [f for f in facets if f is not chosen[0]]


def heatmap_figure(
    groups: list[Group],
    x: str | None,
    y: str | None,
    metrics: list[str] | None = None,
    baseline: str | None = None,
) -> Figure:
    """Per facet (row) and metric (column): a heat map whose cell (x value, y value) is the mean over seeds of
    the runs' final value of the metric, annotated (log colour scale where the metric has one). Zhou et al.
    2022 plot width x epochs per loss. With `baseline` (`loss=ce`) each other row shows |row - baseline| per
    cell, the paper's |Acc_CE - Acc_loss| maps, and the baseline row itself is not drawn."""
    _check_keys(groups, {"--x": x, "--y": y})
    metrics = metrics or HEATMAP
    xs, ys = _levels(groups, x), _levels(groups, y)
    facets = _facets(groups, [x, y])
    reference = None
    if baseline:
        reference, facets = _split_baseline(groups, facets, baseline)
    fig, axes = _subplots(len(facets) * len(metrics), len(metrics))
    for row, (title, members) in enumerate(facets):
        for col, metric in enumerate(metrics):
            ax = axes[row * len(metrics) + col]
            cells = _cells(members, x, y, xs, ys, metric)
            if reference is not None:
                cells = np.abs(cells - _cells(reference, x, y, xs, ys, metric))
            positive = cells[np.isfinite(cells)]
            norm = LogNorm() if table.metric(metric).log and len(positive) and (positive > 0).all() else None
            image = ax.pcolormesh(np.ma.masked_invalid(cells), cmap="viridis", norm=norm)  # vector cells
            for (i, j), value in np.ndenumerate(cells):
                if np.isfinite(value):
                    shade = image.cmap(float(image.norm(value)))
                    dark = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.5
                    color = "w" if dark else "k"
                    ax.text(
                        j + 0.5, i + 0.5, f"{value:.3g}", ha="center", va="center", color=color, fontsize=5.5
                    )
            ax.set_xticks(np.arange(len(xs)) + 0.5, [str(v) for v in xs])
            ax.set_yticks(np.arange(len(ys)) + 0.5, [str(v) for v in ys])
            ax.grid(False)
            if row == len(facets) - 1:
                ax.set_xlabel(x)
            if col == 0:
                ax.set_ylabel(f"{_wrap(title)}\n{y}" if title else y)
            if row == 0:
                ax.set_title(f"|{metric} - {baseline}|" if baseline else metric_label(metric))
    return fig


def pick_evenly(epochs: list[int], count: int) -> list[int]:
    """`count` evenly spaced entries of a sorted list, first and last included."""
    if len(epochs) <= count:
        return epochs
    return [epochs[round(i * (len(epochs) - 1) / (count - 1))] for i in range(count)]


def _pooled(runs: list[Run], epoch: dict[Run, int]) -> dict[str, np.ndarray]:
    """Score samples of the runs (seeds pooled), each run at its `epoch[run]`."""
    arrays = [run.readable_arrays("scores", [epoch[run]]).get(epoch[run], {}) for run in runs]
    return {
        key: np.concatenate([a[key].numpy() for a in arrays if key in a])
        for key, _, _ in SCORE_POPULATIONS
        if any(key in a for a in arrays)
    }


def _violins(ax: Axes, columns: list[dict[str, np.ndarray]], ticks: list[str], xlabel: str) -> None:
    """At each x position three violins side by side: positive scores, negative scores, biases."""
    for i, arrays in enumerate(columns):
        for j, (key, _, color) in enumerate(SCORE_POPULATIONS):
            if len(arrays.get(key, ())):
                parts = ax.violinplot(arrays[key], positions=[i + (j - 1) * 0.28], widths=0.25)
                for body in parts["bodies"]:
                    body.set_color(color)
                for name in ("cbars", "cmins", "cmaxes"):
                    parts[name].set_color(color)
    ax.set_xticks(range(len(columns)), ticks)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("score $s_{ik} = w_k^\\top h_i$; stored bias $b_k$")
    ax.grid(axis="x", visible=False)


def _score_epochs(runs: list[Run]) -> list[int]:
    """Epochs with score samples in every run."""
    return sorted(set.intersection(*(set(run.array_epochs("scores")) for run in runs)))


def _no_scores(what: str, epochs: list[int] | None, saved: list[int]) -> RunError:
    return RunError(
        f"{what} has no score samples for epochs {epochs or 'any'} (scores/ holds {saved}); runs with a "
        "linear classifier store them every measured epoch, or run `nclab measure` first"
    )


def scores_figure(
    groups: list[Group], epochs: list[int] | None = None, x: str | None = None, count: int = 6
) -> Figure:
    """Violins of positive scores, negative scores and biases, seeds pooled. Without `x`: one panel per
    setting, one position per epoch (`epochs`, default `count` evenly spaced). With `x`: one panel per setting
    of the other differing keys, one position per value of config key `x`, each run at its last epoch with
    scores (or the last of `epochs`), as the BCE study's sweeps over the initial bias mean."""
    if x is None:
        fig, axes = _subplots(len(groups), 1 if len(groups) == 1 else 2)
        for ax, group in zip(axes, groups, strict=True):
            saved = _score_epochs(group.runs)
            chosen = sorted(set(epochs) & set(saved)) if epochs else pick_evenly(saved, count)
            if not chosen:
                raise _no_scores(group.name, epochs, saved)
            columns = [_pooled(group.runs, dict.fromkeys(group.runs, e)) for e in chosen]
            _violins(ax, columns, [str(e) for e in chosen], "epoch")
            ax.set_title(_wrap(group.label))
    else:
        _check_keys(groups, {"--x": x})
        facets = _facets(groups, [x])
        fig, axes = _subplots(len(facets), 1 if len(facets) == 1 else 2)
        for ax, (title, members) in zip(axes, facets, strict=True):
            values = _levels(members, x)
            columns = []
            for value in values:
                runs = [run for g in members if g.config.get(x) == value for run in g.runs]
                epoch = {}
                for run in runs:
                    saved = run.array_epochs("scores")
                    wanted = [e for e in saved if not epochs or e == epochs[-1]]
                    if not wanted:
                        raise _no_scores(str(run.path), epochs and epochs[-1:], saved)
                    epoch[run] = wanted[-1]
                columns.append(_pooled(runs, epoch))
            _violins(ax, columns, [str(v) for v in values], x)
            ax.set_title(_wrap(title))
    handles = [plt.Line2D([], [], color=c, linewidth=4) for _, _, c in SCORE_POPULATIONS]
    labels = [t for _, t, _ in SCORE_POPULATIONS]
    fig.legend(handles, labels, loc="outside upper center", ncols=3, frameon=False)
    return fig


FREQUENCY = ["nc1_class", "nc3_cos", "nc4_ncc", "mean_norm"]  # classes/ vectors drawn by `frequency`
CORRELATE = ["cdnv", "nc1", "nc2_h", "test_nc4_ncc"]


def rank_bins(counts: np.ndarray, values: np.ndarray, bins: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """(geometric bin centres of frequency rank 1..K', mean value per bin) over log-spaced rank bins; classes
    ranked by count (most frequent first), empty classes and NaN values left out, empty bins dropped."""
    seen = counts > 0
    order = np.argsort(-counts[seen], kind="stable")
    v = values[seen][order]
    ranks = np.arange(1, len(v) + 1)
    edges = np.unique(np.geomspace(1, len(v) + 1, bins + 1).astype(int))
    centres, means = [], []
    for lo, hi in pairwise(edges):
        chunk = v[(ranks >= lo) & (ranks < hi)]
        chunk = chunk[~np.isnan(chunk)]
        if len(chunk):
            centres.append(np.sqrt(lo * (hi - 1)))
            means.append(chunk.mean())
    return np.asarray(centres), np.asarray(means)


def frequency_figure(groups: list[Group], metrics: list[str] | None = None) -> Figure:
    """Per-class vectors (`metrics`: names in classes/) against frequency rank (log x): each run's last
    `classes/` epoch, binned by rank (`rank_bins`), the mean over a setting's seeds per bin."""
    keys = metrics or FREQUENCY
    arrays: list[list[dict]] = []
    for group in groups:
        arrays.append([])
        for run in group.runs:
            saved = run.array_epochs("classes")
            if not saved:
                raise RunError(f"{run.path} has no classes/ arrays; measured epochs write them")
            arrays[-1].append(run.load_arrays("classes", saved[-1]))
    known = {k for runs in arrays for a in runs for k in a} - {"counts"}
    if metrics and not set(metrics) <= known:
        unknown = ",".join(k for k in metrics if k not in known)
        raise ConfigError(
            f"--metrics {unknown}: not a classes/ vector; available: {', '.join(sorted(known))}"
        )
    keys = [k for k in keys if k in known]
    if not keys:
        raise RunError(f"the runs' classes/ arrays hold none of {', '.join(FREQUENCY)}")
    fig, axes = _subplots(len(keys))
    for i, (group, runs) in enumerate(zip(groups, arrays, strict=True)):
        for ax, key in zip(axes, keys, strict=True):
            binned = [rank_bins(a["counts"].double().numpy(), a[key].double().numpy()) for a in runs]
            size = min(len(b[0]) for b in binned)
            mean = np.mean([b[1][:size] for b in binned], 0)
            ax.plot(binned[0][0][:size], mean, "o-", markersize=2, color=_color(i), label=group.label)
    for ax, key in zip(axes, keys, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("frequency rank of the class")
        ax.set_ylabel(key)
    _legend(fig, groups)
    return fig


def correlate_figure(groups: list[Group], metrics: list[str] | None = None, x: str | None = None) -> Figure:
    """Final `metric` against final test loss, a point per run (colour: its setting); each panel's title
    gives Spearman's rho and Pearson's r over the runs of the facet (one row per value of `x`, or all)."""
    keys = metrics or [k for k in CORRELATE if any(not np.isnan(g.final(k)).all() for g in groups)]
    facets = [("", groups)]
    if x is not None:
        _check_keys(groups, {"--x": x})
        facets = [
            (f"{short(x)}={v}", [g for g in groups if g.config.get(x) == v]) for v in _levels(groups, x)
        ]
    fig, axes = _subplots(len(keys) * len(facets), min(3, len(keys)))
    for row, (title, members) in enumerate(facets):
        for col, key in enumerate(keys):
            ax = axes[row * len(keys) + col]
            for group in members:
                ax.scatter(group.final(key), group.final("test_loss"), s=6, color=_color(groups.index(group)))
            rho, r, n = correlations(members, key)
            stats = f"Spearman {rho:+.2f}, Pearson {r:+.2f} (n={n})" if n >= 3 else f"n={n} < 3"
            ax.set_title(_wrap(f"{title}: {stats}" if title else stats))
            ax.set_xlabel(key)
            ax.set_ylabel("test_loss")
            if table.metric(key).log:
                ax.set_xscale("log")
    _legend(fig, groups)
    return fig


def correlations(groups: list[Group], key: str, against: str = "test_loss") -> tuple[float, float, int]:
    """(Spearman rho, Pearson r, n) of the runs' final `key` and `against` (NaN with fewer than 3 runs)."""
    from scipy.stats import pearsonr, spearmanr

    xs = np.concatenate([g.final(key) for g in groups])
    ys = np.concatenate([g.final(against) for g in groups])
    ok = ~(np.isnan(xs) | np.isnan(ys))
    if ok.sum() < 3:
        return math.nan, math.nan, int(ok.sum())
    return (
        float(spearmanr(xs[ok], ys[ok]).statistic),
        float(pearsonr(xs[ok], ys[ok]).statistic),
        int(ok.sum()),
    )


def save(fig: Figure, path: Path) -> Path:
    """Write the figure atomically (files.replace; format from the suffix: vector for pdf/svg, 300 dpi png)
    and close it."""
    try:
        with paper_style():
            replace(path, lambda tmp: fig.savefig(tmp, format=path.suffix[1:]))
    finally:
        plt.close(fig)
    return path


def render_png(fig: Figure, dpi: int = 150) -> bytes:
    """The figure as PNG bytes (GIF frames), without closing it."""
    buffer = BytesIO()
    with paper_style():
        fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def plot(
    runs: list[Run],
    kind: str = "nc",
    fmt: str = "png",
    out: Path | None = None,
    *,
    band: str = "minmax",
    by_seed: bool = True,
    metrics: list[str] | None = None,
    epochs: list[int] | None = None,
    x: str | None = None,
    y: str | None = None,
    baseline: str | None = None,
    method: str = "auto",
) -> list[Path]:
    """Write the figure of `kind` as `<out or first run's figures>/<kind>.<fmt>`; returns the written paths
    (for `embed`: each run's frames and GIF, in `<out>/<run name>/` or the run's figures/embed/)."""
    if kind not in KINDS:
        raise ConfigError(f"--kind {kind}: choose from {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: choose from {', '.join(FORMATS)}")
    if kind == "embed":
        from nclab.report.embed import visualize

        return [
            p for run in runs for p in visualize(run, epochs, method, fmt=fmt, out=out and out / run.name)
        ]
    groups = group_runs(runs, by_seed)
    if kind != "scores":
        for group in groups:
            for run, records in zip(group.runs, group.records, strict=True):
                if not records:
                    raise RunError(
                        f"{run.path} has no metrics yet (no complete metrics.jsonl line); nothing to plot"
                    )
    if metrics and kind != "frequency":  # frequency draws classes/ vectors, not metrics.jsonl keys
        _check_metrics(groups, metrics)
    with paper_style():
        if kind == "heatmap":
            fig = heatmap_figure(groups, x, y, metrics, baseline)
        elif kind == "scores":
            fig = scores_figure(groups, epochs, x)
        elif kind == "frequency":
            fig = frequency_figure(groups, metrics)
        elif kind == "correlate":
            fig = correlate_figure(groups, metrics, x)
        else:
            curves = metrics or table.keys("curve")
            panels = {"nc": NC_PANELS, "grid": GRID_PANELS}.get(kind) or [[m] for m in curves]
            fig = curves_figure(groups, panels, band)
    return [save(fig, (out or runs[0].path / "figures") / f"{kind}.{fmt}")]
