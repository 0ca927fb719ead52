"""`nclab compare`: one row per run; the config keys that differ between the runs, the final epoch's metrics
(the keys the metric table marks `summary`) and the best test accuracy. With a validation split (`val_acc`
in metrics.jsonl) the best test accuracy is the test accuracy of the best-validation epoch, as Zhou et al.
2022 report it (`best_val_test_top1`); otherwise the maximum test accuracy over measured epochs."""

from __future__ import annotations

import csv
import io
from typing import Any

from nclab.metrics import table
from nclab.runs import Run

__all__ = ["FORMATS", "compare", "compare_rows"]

FORMATS = ("md", "csv")
IGNORED = {"name", "out"}


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        elif key not in IGNORED or prefix:
            out[f"{prefix}{key}"] = value
    return out


def _best(records: list[dict[str, Any]]) -> tuple[float | None, int | None]:
    """(best test accuracy, its epoch): at the best val_acc when there is one, else the max test_acc."""
    by = "val_acc" if any(r.get("val_acc") is not None for r in records) else "test_acc"
    scored = [r for r in records if r.get(by) is not None and r.get("test_acc") is not None]
    if not scored:
        return None, None
    best = max(scored, key=lambda r: r[by])  # the first of equal maxima
    return best["test_acc"], best["epoch"]


def compare_rows(runs: list[Run]) -> list[dict[str, Any]]:
    configs = [_flat(run.config().model_dump()) for run in runs]
    keys = sorted(set().union(*configs))
    differing = [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]
    rows = []
    for run, config in zip(runs, configs, strict=False):
        records = run.metrics()
        last = records[-1] if records else {}
        best, best_epoch = _best(records)
        row = {"run": run.name} | {k: config.get(k) for k in differing} | {"epoch": last.get("epoch")}
        metrics = {k: last.get(k) for k in table.keys("summary")}
        rows.append(row | metrics | {"best_test_acc": best, "best_epoch": best_epoch})
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def compare(runs: list[Run], fmt: str = "md") -> str:
    """The table as Markdown or CSV text."""
    rows = compare_rows(runs)
    columns = list(rows[0])
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
        return buffer.getvalue()
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"
