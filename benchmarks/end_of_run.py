"""CPU time of a tiny digits run's end-of-run figures, in one process (imports and caches warm):

- the nc figure drawn once (figures/nc.png at 300 dpi; TensorBoard's figures/nc is that file at 100 dpi)
  against the same figure drawn twice, as before (a second figure built and rendered for TensorBoard);
- a whole run with `train.figures=true` (the default) against `train.figures=false`.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/end_of_run.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter

from nclab.cli import main
from nclab.report.board import log_figures
from nclab.report.groups import group_runs
from nclab.report.plots import NC_PANELS, curves_figure, plot, scores_figure
from nclab.report.style import paper_style
from nclab.runs import Run

TINY = ["epochs=3", "model.width=16", "model.depth=1", "--quiet"]


def cpu(fn: Callable[[int], object], repeats: int) -> float:
    """Median process CPU seconds of fn(i) over `repeats` calls."""
    times = []
    for i in range(repeats):
        start = time.process_time()
        fn(i)
        times.append(time.process_time() - start)
    return sorted(times)[len(times) // 2]


def drawn_twice(run: Run, writer: SummaryWriter) -> None:
    """The earlier end of run: TensorBoard's nc (and scores) figures built and rendered, then nc.png built
    and rendered again."""
    groups = group_runs([run])
    with paper_style():
        writer.add_figure("figures/nc", curves_figure(groups, NC_PANELS), 0)
        if run.array_epochs("scores"):
            writer.add_figure("figures/scores", scores_figure(groups), 0)
    plot([run])


def drawn_once(run: Run, writer: SummaryWriter) -> None:
    log_figures(writer, run, 0, plot([run])[0])


def main_() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        assert main(["train", f"out={out}", "name=warm", *TINY]) == 0  # imports, font cache, mathtext
        run = Run(out / "warm")
        writer = SummaryWriter(str(out / "board"))
        twice = cpu(lambda i: drawn_twice(run, writer), args.repeats)
        once = cpu(lambda i: drawn_once(run, writer), args.repeats)
        print(f"end-of-run figures (nc, and scores for TensorBoard), median CPU s of {args.repeats}:")
        print(f"  nc drawn twice (before)  {twice:.3f}")
        print(f"  nc drawn once            {once:.3f}   ratio {twice / once:.2f}x")
        writer.close()

        def run_with(figures: str) -> Callable[[int], object]:
            return lambda i: main(
                ["train", f"out={out}", f"name={figures}{i}", f"train.figures={figures}", *TINY]
            )

        on, off = cpu(run_with("true"), args.repeats), cpu(run_with("false"), args.repeats)
        print(f"tiny digits run ({' '.join(TINY[:-1])}), median CPU s of {args.repeats}:")
        print(f"  train.figures=true   {on:.3f}")
        print(f"  train.figures=false  {off:.3f}   ratio {on / off:.2f}x")


if __name__ == "__main__":
    main_()
