"""Every figure kind with 1, 3 and 8 runs, written as png, pdf and svg, has no colliding text, no text over
another panel and no text outside the figure (tests/report/layout.py)."""

import matplotlib.pyplot as plt
import pytest

from nclab.report.embed import feature_frames
from nclab.report.groups import group_runs
from nclab.report.plots import GRID_PANELS, NC_PANELS, curves_figure, heatmap_figure, paper_style, scores_figure
from tests.report.conftest import write_run
from tests.report.layout import collisions

# 1 run; 3 settings; 4 settings x 2 seeds (optimizer x width: two heat-map rows, seeds as bands)
SETTINGS = {
    1: [["model.width=8", "optim.lr=0.1"]],
    3: [["model.width=8", "optim.lr=0.1"], ["model.width=16", "optim.lr=0.1"], ["model.width=8", "optim.lr=0.01"]],
    8: [[f"optim={o}", f"model.width={w}", f"seed={s}"] for o in ("sgd", "adam") for w in (8, 16) for s in (0, 1)],
}
FIGURES = {
    "nc": lambda groups, runs: [curves_figure(groups, NC_PANELS)],
    "curves": lambda groups, runs: [curves_figure(groups, [["nc1"], ["cdnv"], ["nc2_h"], ["test_acc"]])],
    "grid": lambda groups, runs: [curves_figure(groups, GRID_PANELS)],
    "heatmap": lambda groups, runs: [heatmap_figure(groups, "model.width", "optim.lr")],
    "scores": lambda groups, runs: [scores_figure(groups)],
    "embed": lambda groups, runs: [fig for run in runs for _, fig in feature_frames(run, [5])],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout")
    return {
        n: [
            write_run(root / str(n), f"digits-mlp-{i}", [*keys, "data=fashion_mnist"], scores=True, features=True,
                      offset=i)  # fmt: skip
            for i, keys in enumerate(settings)
        ]
        for n, settings in SETTINGS.items()
    }


@pytest.mark.parametrize("n", list(SETTINGS))
@pytest.mark.parametrize("kind", list(FIGURES))
def test_no_text_collides_in_any_format(runs, kind, n):
    with paper_style():
        figures = FIGURES[kind](group_runs(runs[n]), runs[n])
    faults = [f"{fmt}: {fault}" for fig in figures for fmt in ("png", "pdf", "svg") for fault in collisions(fig, fmt)]
    for fig in figures:
        plt.close(fig)
    assert not faults, f"{len(faults)} layout faults:\n" + "\n".join(faults)
