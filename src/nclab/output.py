"""What the commands print, for a terminal and for a file alike: `console()` is rich's console, but when the
output is not a terminal (a pipe, a file, a cluster's log) lines are never cut or wrapped at 80 columns;
`EpochLog` is the training progress: a live bar on a terminal, one plain line per measured epoch otherwise
(the keys the metric table marks `progress`)."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["EpochLog", "console", "progress_text"]

WIDE = 100_000  # columns of a non-terminal console: a line is as long as its text


def console(**kwargs: Any) -> Console:
    """A rich console; on a pipe or file no line is cut, and text (paths) is not wrapped mid-word."""
    out = Console(**kwargs)
    if not out.is_terminal:
        out.width = WIDE
        out.soft_wrap = True
    return out


def progress_text(record: dict[str, Any]) -> str:
    """`nc1 0.123  test_acc 0.9  ...` over the progress keys the record holds."""
    from nclab.metrics import table

    shown = [k for k in table.keys("progress") if isinstance(record.get(k), int | float)]
    return "  ".join(f"{k} {record[k]:.4g}" for k in shown)


class EpochLog:
    """Training progress from epoch `done` to `total`: `epoch(n, record)` after each epoch (record None when
    it was not measured). A terminal gets rich's bar; other output one flushed line per measured epoch."""

    def __init__(self, total: int, done: int = 0, enabled: bool = True) -> None:
        self.total, self.enabled = total, enabled
        self.start = time.perf_counter()
        self.bar: Progress | None = None
        if enabled and sys.stdout.isatty():
            self.bar = Progress(
                TextColumn("epoch"), MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[info]}"),
            )  # fmt: skip
            self.task = self.bar.add_task("train", total=total, completed=done, info="")

    def __enter__(self) -> EpochLog:
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.stop()

    def epoch(self, epoch: int, record: dict[str, Any] | None) -> None:
        if self.bar:
            if record is not None:
                self.bar.update(self.task, info=progress_text(record))
            self.bar.advance(self.task)
        elif self.enabled and record is not None:
            seconds = time.perf_counter() - self.start
            print(f"epoch {epoch}/{self.total}  {progress_text(record)}  ({seconds:.1f} s)", flush=True)
