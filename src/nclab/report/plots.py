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
- frequency, correlate: the language-model figures of report/lm.py.
(`--kind embed`, the feature frames, is report/embed.py.)

Runs equal up to `seed` are one line: the mean over seeds with a shaded min-max (or +-1 std) band, one legend
entry (line over band). Lines take the Okabe-Ito colour-blind-safe palette, legend entries name only the
config keys that differ between the settings (report/groups.py) and sit above the panels. Axes carry the
metric's short mathtext symbol (report/style.py `label`); `caption` gives the long descriptions. The axis is
logarithmic where the metric table says so, epoch ticks and whole config values are integers.
"""

from __future__ import annotations

import warnings
from itertools import product
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nclab.errors import ConfigError, RunError
from nclab.metrics import table
from nclab.report.groups import Group, check_keys, facets, group_runs, levels, short, value_text
from nclab.report.lm import CORRELATE, FREQUENCY, correlate_figure, frequency_figure
from nclab.report.style import (
    COLUMN,
    LINESTYLES,
    PALETTE,
    PANEL_HEIGHT,
    caption_line,
    color,
    label,
    legend,
    linestyle,
    log_scale,
    paper_style,
    pick_evenly,
    save,
    subplots,
    wrap,
)
from nclab.runs import Run

__all__ = [
    "BANDS", "FORMATS", "KINDS", "caption", "curves_figure", "heatmap_figure", "plot", "scores_figure",
]  # fmt: skip

FORMATS = ("png", "pdf", "svg")
KINDS = ("nc", "curves", "grid", "heatmap", "scores", "frequency", "correlate")
BANDS = ("minmax", "std", "none")
NC_PANELS = [["nc1"], ["nc2_h"], ["nc2_w"], ["nc3"], ["nc4_ncc"], ["train_acc", "test_acc"]]
GRID_PANELS = [["nc1"], ["nc2_w"], ["nc3"], ["nc4_bias"]]
HEATMAP = ["nc1", "nc2_w", "nc3", "nc4_bias", "test_acc"]
SCORE_POPULATIONS = [
    ("score_pos", "positive $s_{i,y_i}$", PALETTE[1]),
    ("score_neg", "negative $s_{i,k\\neq y_i}$", PALETTE[0]),
    ("bias", "bias $b_k$", PALETTE[2]),
]
ANNOTATED = 6  # heat-map cells carry their values up to this many columns; wider maps get a colour bar


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


def x_label(groups: list[Group]) -> str:
    """The time axis: `iteration` for UFM simulations (their record's `epoch` counts iterations)."""
    return "iteration" if all(g.config.get("kind") == "ufm" for g in groups) else "epoch"


def _panel_label(keys: list[str]) -> str:
    """A panel's y label: the metric's symbol (a key without one wrapped to the panel's height), or the
    table group of several keys (`accuracy`)."""
    if len(keys) == 1:
        text = label(keys[0])
        return text if "$" in text else wrap(text, PANEL_HEIGHT - 0.8)
    groups = {table.metric(k).group for k in keys}
    return groups.pop() if len(groups) == 1 else "value"


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
                ax.plot(epochs, mean, linestyle(i, j), color=color(i), label=group.label)
                if len(group.runs) > 1 and band != "none":
                    ax.fill_between(epochs, low, high, color=color(i), alpha=0.2, linewidth=0)
        ax.set_ylabel(_panel_label(keys))
        ax.set_xlabel(x_label(groups))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
        if not any(len(line.get_xdata()) for line in ax.get_lines()):  # no run has the key (head-less runs)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", va="center", color="0.4")
        elif log:
            log_scale(ax, "y")


def curves_figure(groups: list[Group], panels: list[list[str]], band: str = "minmax") -> Figure:
    """One panel per entry of `panels` (a list of metrics.jsonl keys drawn together), groups overlaid; a key
    no run has leaves its panel empty."""
    if band not in BANDS:
        raise ConfigError(f"--band {band}: choose from {', '.join(BANDS)}")
    fig, axes = subplots(len(panels), 2 if len(panels) == 4 else None)
    _draw_panels(axes, groups, panels, band)
    widest = max(panels, key=len)  # a panel of two keys (accuracy): solid and dashed in the legend
    keys = [(style, label(key)) for style, key in zip(LINESTYLES, widest, strict=False)]
    legend(fig, groups, band, keys if len(widest) > 1 else [])
    return fig


def _check_metrics(groups: list[Group], metrics: list[str]) -> None:
    """`--metrics` names keys of metrics.jsonl; one error line listing the available keys otherwise."""
    known = set().union(*(r.keys() for g in groups for recs in g.records for r in recs))
    unknown = [k for k in metrics if k not in known]
    if unknown:
        raise ConfigError(
            f"--metrics {','.join(unknown)}: not in metrics.jsonl; available: {', '.join(sorted(known))}"
        )


def _cells(members: list[Group], x: str, y: str, xs: list, ys: list, metric: str) -> np.ndarray:
    """(len(ys), len(xs)): per (x value, y value) the mean over seeds of the members' final `metric`."""
    cells = np.full((len(ys), len(xs)), np.nan)
    for (i, yv), (j, xv) in product(enumerate(ys), enumerate(xs)):
        finals = [g.final(metric) for g in members if g.config.get(x) == xv and g.config.get(y) == yv]
        if finals and not np.isnan(np.concatenate(finals)).all():
            cells[i, j] = np.nanmean(np.concatenate(finals))
    return cells


def _split_baseline(
    groups: list[Group], rows: list[tuple[str, list[Group]]], text: str
) -> tuple[list[Group], list[tuple[str, list[Group]]]]:
    """`--baseline key=value` (`loss=ce`): (the facet whose settings have that value, the other facets)."""
    from nclab.config import canonical_key, parse_override

    key, value = parse_override(text)
    key = canonical_key(key)
    check_keys(groups, {"--baseline": key})
    chosen = [f for f in rows if all(g.config.get(key) == value for g in f[1])]
    if len(chosen) != 1 or len(rows) < 2:
        titles = "; ".join(title for title, _ in rows) or "one row"
        raise ConfigError(f"--baseline {text}: not one row of the heat maps (rows: {titles})")
    return chosen[0][1], [f for f in rows if f is not chosen[0]]


def _heat(ax: Axes, cells: np.ndarray, log: bool, xs: list, ys: list) -> None:
    """One heat map: vector cells (`pcolormesh`, log colours for a log metric with positive cells), each
    annotated with its value when the map has at most ANNOTATED columns, else a colour bar; value ticks."""
    positive = cells[np.isfinite(cells)]
    norm = LogNorm() if log and len(positive) and (positive > 0).all() else None
    image = ax.pcolormesh(np.ma.masked_invalid(cells), cmap="viridis", norm=norm)
    if len(xs) > ANNOTATED:
        ax.get_figure().colorbar(image, ax=ax, fraction=0.08, pad=0.02)
    else:
        for (i, j), value in np.ndenumerate(cells):
            if np.isfinite(value):
                shade = image.cmap(float(image.norm(value)))
                dark = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.5
                color = "w" if dark else "k"
                ax.text(j + 0.5, i + 0.5, f"{value:.3g}", ha="center", va="center", color=color, fontsize=5.5)
    ax.set_xticks(np.arange(len(xs)) + 0.5, [value_text(v) for v in xs])
    ax.set_yticks(np.arange(len(ys)) + 0.5, [value_text(v) for v in ys])
    ax.grid(False)


def heatmap_figure(
    groups: list[Group],
    x: str | None,
    y: str | None,
    metrics: list[str] | None = None,
    baseline: str | None = None,
) -> Figure:
    """Per facet (row) and metric (column): a heat map whose cell (x value, y value) is the mean over seeds of
    the runs' final value of the metric (log colour scale where the metric has one). Zhou et al. 2022 plot
    width x epochs per loss. With `baseline` (`loss=ce`) each other row shows |row - baseline| per cell, the
    paper's |Acc_CE - Acc_loss| maps, and the baseline row itself is not drawn. Column titles are the
    metrics' symbols, row labels the facet's setting over the y key."""
    check_keys(groups, {"--x": x, "--y": y})
    metrics = metrics or HEATMAP
    xs, ys = levels(groups, x), levels(groups, y)
    rows = facets(groups, [x, y])
    reference = None
    if baseline:
        reference, rows = _split_baseline(groups, rows, baseline)
    fig, axes = subplots(len(rows) * len(metrics), len(metrics))
    for row, (title, members) in enumerate(rows):
        for col, metric in enumerate(metrics):
            ax = axes[row * len(metrics) + col]
            cells = _cells(members, x, y, xs, ys, metric)
            if reference is not None:
                cells = np.abs(cells - _cells(reference, x, y, xs, ys, metric))
            _heat(ax, cells, table.metric(metric).log, xs, ys)
            if row == len(rows) - 1:
                ax.set_xlabel(short(x))
            if col == 0:
                ax.set_ylabel(f"{wrap(title, PANEL_HEIGHT - 0.3)}\n{short(y)}" if title else short(y))
            if row == 0:
                ax.set_title(f"|{label(metric)} $-$ {baseline}|" if baseline else label(metric))
    return fig


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
        for j, (key, _, shade) in enumerate(SCORE_POPULATIONS):
            if len(arrays.get(key, ())):
                parts = ax.violinplot(arrays[key], positions=[i + (j - 1) * 0.28], widths=0.25)
                for body in parts["bodies"]:
                    body.set_color(shade)
                for name in ("cbars", "cmins", "cmaxes"):
                    parts[name].set_color(shade)
    ax.set_xticks(range(len(columns)), ticks)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("$s_{ik}$, $b_k$")
    ax.grid(axis="x", visible=False)


def _score_epochs(runs: list[Run]) -> list[int]:
    """Epochs with score samples in every run."""
    return sorted(set.intersection(*(set(run.array_epochs("scores")) for run in runs)))


def _no_scores(what: str, epochs: list[int] | None, saved: list[int]) -> RunError:
    return RunError(
        f"{what} has no score samples for epochs {epochs or 'any'} (scores/ holds {saved}); runs with a "
        "linear classifier store them every measured epoch, or run `nclab measure` first"
    )


def _scores_at_last(members: list[Group], x: str, values: list, epochs: list[int] | None) -> list[dict]:
    """Per value of config key `x`: the members' pooled scores, each run at its last epoch with scores
    (or the last of `epochs`)."""
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
    return columns


def scores_figure(
    groups: list[Group], epochs: list[int] | None = None, x: str | None = None, count: int = 6
) -> Figure:
    """Violins of positive scores, negative scores and biases, seeds pooled. Without `x`: one panel per
    setting, one position per epoch (`epochs`, default `count` evenly spaced). With `x`: one panel per setting
    of the other differing keys, one position per value of config key `x`, each run at its last epoch with
    scores (or the last of `epochs`), as the BCE study's sweeps over the initial bias mean."""
    if x is not None:
        check_keys(groups, {"--x": x})
    panels = [(g.label, [g]) for g in groups] if x is None else facets(groups, [x])
    cols = 1 if len(panels) == 1 else 2
    fig, axes = subplots(len(panels), cols)
    for ax, (title, members) in zip(axes, panels, strict=True):
        if x is None:
            saved = _score_epochs(members[0].runs)
            chosen = sorted(set(epochs) & set(saved)) if epochs else pick_evenly(saved, count)
            if not chosen:
                raise _no_scores(members[0].name, epochs, saved)
            columns = [_pooled(members[0].runs, dict.fromkeys(members[0].runs, e)) for e in chosen]
            _violins(ax, columns, [str(e) for e in chosen], "epoch")
        else:
            values = levels(members, x)
            _violins(
                ax, _scores_at_last(members, x, values, epochs), [value_text(v) for v in values], short(x)
            )
        if len(panels) > 1 or x is not None:
            ax.set_title(wrap(title, COLUMN / cols - 0.4))
    handles = [plt.Line2D([], [], color=c, linewidth=4) for _, _, c in SCORE_POPULATIONS]
    labels = [t for _, t, _ in SCORE_POPULATIONS]
    fig.legend(handles, labels, loc="outside upper center", ncols=3, frameon=False)
    return fig


def _panels(kind: str, metrics: list[str] | None) -> list[list[str]]:
    """The keys of each panel of a curves-like kind (nc, grid, curves)."""
    return {"nc": NC_PANELS, "grid": GRID_PANELS}.get(kind) or [[m] for m in metrics or table.keys("curve")]


def caption(
    runs: list[Run],
    kind: str = "nc",
    *,
    band: str = "minmax",
    by_seed: bool = True,
    metrics: list[str] | None = None,
    x: str | None = None,
    y: str | None = None,
    baseline: str | None = None,
) -> str:
    """The figure's caption: what a line, band or cell is, then each drawn metric's symbol with its key,
    description and source (the long text that stays off the axes)."""
    groups = group_runs(runs, by_seed)
    seeds = max(len(g.runs) for g in groups)
    spread = {"minmax": "min-max", "std": "mean +- 1 std (ddof=1)", "none": "not drawn"}[band]
    if kind == "heatmap":
        keys = metrics or HEATMAP
        head = f"cells: final value (mean over seeds) per {short(x or '')} and {short(y or '')}"
        head += f"; |row - {baseline}| per cell" if baseline else ""
    elif kind == "scores":
        keys, head = [], "violins of positive scores, negative scores and biases, seeds pooled"
    elif kind == "frequency":
        keys, head = [], f"per-class {', '.join(metrics or FREQUENCY)} against the class's frequency rank, "
        head += "mean over log-spaced rank bins and over seeds"
    elif kind == "correlate":
        keys = [*(metrics or CORRELATE), "test_loss"]
        head = "each run's final value against its final test loss; titles: Spearman's rho, Pearson's r"
    else:
        keys = [k for panel in _panels(kind, metrics) for k in panel]
        head = f"lines: mean over seeds; band: {spread} over seeds" if seeds > 1 else "one line per setting"
    lines = [f"{kind}: {len(groups)} setting(s) of {len(runs)} run(s); {head}."]
    return "\n".join(lines + [f"  {caption_line(k)}" for k in keys])


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
) -> list[Path]:
    """Write the figure of `kind` as `<out or first run's figures>/<kind>.<fmt>`; returns the written path."""
    if kind not in KINDS:
        raise ConfigError(f"--kind {kind}: choose from {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: choose from {', '.join(FORMATS)}")
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
            fig = curves_figure(groups, _panels(kind, metrics), band)
    return [save(fig, (out or runs[0].path / "figures") / f"{kind}.{fmt}")]
