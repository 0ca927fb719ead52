"""Figures of the language-model studies, `nclab plot --kind frequency|correlate`:

- frequency: per-class vectors of the last saved `classes/` epoch (nc1_class, nc3_cos, nc4_ncc) against the
  class's frequency rank (log x), the mean over log-spaced rank bins (`metrics.lm.rank_bins`, as the
  `<vector>_bin<i>` keys of metrics.jsonl), one line per setting (language models: Wu & Papyan 2024);
- correlate: each run's final value of a metric (`--metrics`, default cdnv, nc1, nc2_h, test_nc4_ncc)
  against its final test loss, one point per run, Spearman and Pearson over the runs of each facet (`--x KEY`:
  one row per value of KEY), as Linguistic Collapse's figures 2-4.
Shared style, labels and legend: report/style.py.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from nclab.errors import ConfigError, RunError
from nclab.metrics import table
from nclab.metrics.lm import rank_bins
from nclab.report.groups import Group, check_keys, levels, short, value_text
from nclab.report.style import COLUMN, color, label, legend, log_scale, subplots, wrap

__all__ = [
    "CORRELATE",
    "FREQUENCY",
    "correlate_figure",
    "correlation_rows",
    "correlations",
    "frequency_figure",
]

FREQUENCY = ["nc1_class", "nc3_cos", "nc4_ncc", "mean_norm"]  # classes/ vectors drawn by `frequency`
CORRELATE = ["cdnv", "nc1", "nc2_h", "test_nc4_ncc"]
VECTORS = {"nc1_class": r"$V_k / \mathrm{tr}\,\Sigma_B$", "nc3_cos": r"$\cos(w_k, \mu_k)$",
           "nc4_ncc": r"$\mathcal{NC}_4^{(k)}$", "mean_norm": r"$\|\mu_k - \mu_G\|$"}  # fmt: skip


def _classes(groups: list[Group]) -> list[list[dict]]:
    """Per group, each run's last saved `classes/` arrays."""
    arrays: list[list[dict]] = []
    for group in groups:
        arrays.append([])
        for run in group.runs:
            saved = run.array_epochs("classes")
            if not saved:
                raise RunError(f"{run.path} has no classes/ arrays; measured epochs write them")
            arrays[-1].append(run.load_arrays("classes", saved[-1]))
    return arrays


def frequency_figure(groups: list[Group], metrics: list[str] | None = None) -> Figure:
    """Per-class vectors (`metrics`: names in classes/) against frequency rank (log x): each run's last
    `classes/` epoch, binned by rank (`rank_bins`), the mean over a setting's seeds per bin."""
    arrays = _classes(groups)
    known = {k for runs in arrays for a in runs for k in a} - {"counts"}
    if metrics and not set(metrics) <= known:
        unknown = ",".join(k for k in metrics if k not in known)
        raise ConfigError(
            f"--metrics {unknown}: not a classes/ vector; available: {', '.join(sorted(known))}"
        )
    keys = [k for k in metrics or FREQUENCY if k in known]
    if not keys:
        raise RunError(f"the runs' classes/ arrays hold none of {', '.join(FREQUENCY)}")
    fig, axes = subplots(len(keys))
    for i, runs in enumerate(arrays):
        for ax, key in zip(axes, keys, strict=True):
            binned = [rank_bins(a["counts"].double().numpy(), a[key].double().numpy()) for a in runs]
            size = min(len(b[0]) for b in binned)
            mean = np.mean([b[1][:size] for b in binned], 0)
            drawn = ~np.isnan(mean)  # bins without values in some seed
            ax.plot(binned[0][0][:size][drawn], mean[drawn], "o-", markersize=2, color=color(i))
    for ax, key in zip(axes, keys, strict=True):
        log_scale(ax, "x")
        ax.set_xlabel("frequency rank")
        ax.set_ylabel(VECTORS.get(key, key))
    legend(fig, groups, "none")
    return fig


def correlate_figure(groups: list[Group], metrics: list[str] | None = None, x: str | None = None) -> Figure:
    """Final `metric` against final test loss, a point per run (colour: its setting); each panel's title
    gives Spearman's rho and Pearson's r over the runs of the facet (one row per value of `x`, or all)."""
    keys = correlate_keys(groups, metrics)
    facets = correlation_facets(groups, x)
    cols = min(3, len(keys))
    fig, axes = subplots(len(keys) * len(facets), cols)
    width = (COLUMN if cols <= 2 else 2 * COLUMN) / cols - 0.3
    for row, (value, members) in enumerate(facets):
        title = "" if x is None else f"{short(x)}={value_text(value)}"
        for col, key in enumerate(keys):
            ax = axes[row * len(keys) + col]
            for group in members:
                ax.scatter(group.final(key), group.final("test_loss"), s=6, color=color(groups.index(group)))
            rho, r, n = correlations(members, key)
            stats = f"Spearman {rho:+.2f}, Pearson {r:+.2f} (n={n})" if n >= 3 else f"n={n} < 3"
            ax.set_title(wrap(f"{title}: {stats}" if title else stats, width))
            ax.set_xlabel(label(key))
            ax.set_ylabel(label("test_loss"))
            if table.metric(key).log:
                log_scale(ax, "x")
    legend(fig, groups, "none")
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


def correlate_keys(groups: list[Group], metrics: list[str] | None) -> list[str]:
    """`metrics`, or the keys of `CORRELATE` some run has."""
    return metrics or [k for k in CORRELATE if any(not np.isnan(g.final(k)).all() for g in groups)]


def correlation_facets(groups: list[Group], x: str | None) -> list[tuple[Any, list[Group]]]:
    """(value, the groups with it) per value of config key `x` (`levels` order); [(None, groups)] without."""
    if x is None:
        return [(None, groups)]
    check_keys(groups, {"--x": x})
    return [(v, [g for g in groups if g.config.get(x) == v]) for v in levels(groups, x)]


def correlation_rows(
    groups: list[Group], metrics: list[str] | None = None, x: str | None = None
) -> list[dict[str, Any]]:
    """`nclab compare --correlate`: per metric and facet (value of `x`) the row `metric`, `x`'s value,
    `spearman`, `pearson` (`correlations` over the facet's runs; None where undefined) and `n`."""
    if all(np.isnan(g.final("test_loss")).all() for g in groups):
        raise RunError("no run has a final test_loss to correlate with")
    rows = []
    for key in correlate_keys(groups, metrics):
        for value, members in correlation_facets(groups, x):
            rho, r, n = correlations(members, key)
            row = {"metric": key} | ({} if x is None else {x: value})
            stats = {"spearman": rho, "pearson": r}  # NaN below 3 runs or for a constant column
            rows.append(row | {k: None if math.isnan(v) else v for k, v in stats.items()} | {"n": n})
    return rows
