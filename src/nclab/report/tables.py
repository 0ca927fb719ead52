"""`nclab compare`: one row per setting (runs equal up to `seed`, report/groups.py) or, with `--each-seed`,
per run; the config keys that differ between the rows, the number of seeds, the final epoch's metrics (the
keys the metric table marks `summary`, or `--metrics`) and the best test accuracy with its epoch, as the mean
over seeds with the sample standard deviation (ddof=1) beside it (`nc1:std` columns in CSV: a name no metric
key can take, `cdnv_std` being one; `mean ± std` cells in Markdown). A column no row has a value for is left
out. With a validation split (`val_acc` in metrics.jsonl) the best test accuracy is the test accuracy of the
best-validation epoch, as Zhou et al. 2022 report it (`best_val_test_top1`); otherwise the maximum test
accuracy over measured epochs.

`--correlate [--metrics M] [--x KEY]`: the final metrics against the final test loss across the runs, Spearman
and Pearson per value of KEY (Linguistic Collapse's figures 2-4 as a table; report/lm.py computes them)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from nclab.errors import ConfigError, NclabError, RunError, warn
from nclab.metrics import table
from nclab.report.groups import differing, group_runs
from nclab.runs import Run

__all__ = ["FORMATS", "compare", "compare_rows", "run_rows"]

FORMATS = ("md", "csv")
STD = ":std"  # the spread column of `key` is `key:std`


def _best(records: list[dict[str, Any]]) -> tuple[float | None, int | None]:
    """(best test accuracy, its epoch): at the best val_acc when there is one, else the max test_acc."""
    by = "val_acc" if any(r.get("val_acc") is not None for r in records) else "test_acc"
    scored = [r for r in records if r.get(by) is not None and r.get("test_acc") is not None]
    if not scored:
        return None, None
    best = max(scored, key=lambda r: r[by])  # the first of equal maxima
    return best["test_acc"], best["epoch"]


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof=1; None for one value) of the non-null values; (None, None) if none."""
    kept = np.array([v for v in values if v is not None], dtype=float)
    if not len(kept):
        return None, None
    return float(kept.mean()), float(kept.std(ddof=1)) if len(kept) > 1 else None


def compare_rows(
    runs: list[Run], by_seed: bool = True, metrics: list[str] | None = None
) -> list[dict[str, Any]]:
    """One dict per setting (per run without `by_seed`): `run` (the run names), the differing config keys,
    `seeds` (with `by_seed`), `epoch`, the final value of each metric (default: the summary keys), the best
    test accuracy and its epoch; with several seeds in a row each value is the mean, `<key>:std` the std.
    Columns without a value in any row are dropped."""
    groups = group_runs(runs, by_seed)
    keys = differing([g.config for g in groups])
    several = any(len(g.runs) > 1 for g in groups)
    _check_metrics(metrics, groups)
    rows = []
    for group in groups:
        lasts = [recs[-1] if recs else {} for recs in group.records]
        best = [_best(recs) for recs in group.records]
        row: dict[str, Any] = {"run": group.name} | {k: group.config.get(k) for k in keys}
        if by_seed:
            row["seeds"] = len(group.runs)
        epochs = [last["epoch"] for last in lasts if "epoch" in last]
        row["epoch"] = max(epochs) if epochs else None
        columns = {k: [last.get(k) for last in lasts] for k in metrics or table.keys("summary")}
        columns["best_test_acc"] = [acc for acc, _ in best]
        columns["best_epoch"] = [epoch for _, epoch in best]
        for key, values in columns.items():
            row[key], std = _mean_std(values)
            if several:
                row[f"{key}{STD}"] = std
        rows.append(row)
    empty = {c for c in rows[0] if all(row[c] is None for row in rows)}
    return [{k: v for k, v in row.items() if k not in empty} for row in rows]


def _check_metrics(metrics: list[str] | None, groups: list) -> None:
    """`--metrics` keys must be in some run's last record (one line naming those that are)."""
    if not metrics:
        return
    present = sorted({k for g in groups for recs in g.records if recs for k in recs[-1]} - {"epoch"})
    missing = [k for k in metrics if k not in present]
    if missing:
        raise ConfigError(
            f"--metrics {', '.join(missing)}: not in the runs' final records; they hold {', '.join(present)}"
        )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def compare(
    runs: list[Run],
    fmt: str = "md",
    by_seed: bool = True,
    metrics: list[str] | None = None,
    correlate: bool = False,
    x: str | None = None,
) -> str:
    """The table as Markdown (`mean ± std` cells) or CSV (`<key>:std` columns) text. With `correlate`
    instead the final value of each of `metrics` (None: report/lm.py's defaults) against the final test loss
    over the runs, one row per metric and value of config key `x` (`report.lm.correlation_rows`: Spearman
    rho, Pearson r, n)."""
    if not correlate:
        return _text(compare_rows(runs, by_seed, metrics), fmt)
    from nclab.report.lm import correlation_rows  # the figure stack: only for this table

    groups = group_runs(runs)
    _check_metrics(metrics, groups)
    return _text(correlation_rows(groups, metrics, x), fmt)


def _text(rows: list[dict[str, Any]], fmt: str) -> str:
    """`rows` (equal keys) as CSV or Markdown; `<key>:std` columns go beside `key` in Markdown."""
    columns = list(rows[0])
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
        return buffer.getvalue()
    shown = [c for c in columns if not c.endswith(STD)]

    def cell(row: dict[str, Any], column: str) -> str:
        std = row.get(f"{column}{STD}")
        return _cell(row[column]) + (f" ± {std:.2g}" if std is not None else "")

    lines = ["| " + " | ".join(shown) + " |", "|" + " --- |" * len(shown)]
    lines += ["| " + " | ".join(cell(row, c) for c in shown) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def run_rows(root: Path) -> list[dict[str, Any]]:
    """`nclab runs`: per run directory under `root` (sorted by name) its status (running, finished, failed,
    interrupted; killed = running with a free lock), epochs done/total, the last record's train/test accuracy
    and nc1, and its disk use in MB. A run whose metrics.jsonl cannot be read keeps its row (metrics `-`)
    and gets one warning line naming the file: one broken run does not hide the others."""
    if not root.is_dir():
        raise RunError(f"{root} is not a directory of runs")
    rows = []
    for path in sorted(p for p in root.iterdir() if (p / "config.yaml").is_file()):
        run = Run(path)
        status = run.status()
        try:
            records = run.metrics()
        except NclabError as exc:
            warn(f"{exc}; its row shows no metrics")
            records = []
        last = records[-1] if records else {}
        total = status.get("epochs")
        rows.append({
            "run": run.name,
            "status": run.state_name(),
            "epochs": f"{status.get('epochs_done', 0)}/{total if total is not None else '?'}",
            "train_acc": last.get("train_acc"),
            "test_acc": last.get("test_acc"),
            "nc1": last.get("nc1"),
            "MB": round(run.disk_use() / 1e6, 1),
        })  # fmt: skip
    if not rows:
        raise RunError(f"no run directories (with config.yaml) in {root}")
    return rows
