"""Every figure kind with 1, 3 and 8 runs, written as png, pdf and svg, has no colliding text, no text over
another panel and no text outside the figure (tests/report/layout.py)."""

import matplotlib.pyplot as plt
import pytest

from nclab.metrics import table
from nclab.report.embed import feature_frames
from nclab.report.groups import group_runs
from nclab.report.lm import correlate_figure, frequency_figure
from nclab.report.plots import GRID_PANELS, NC_PANELS, curves_figure, heatmap_figure, scores_figure
from nclab.report.style import paper_style
from tests.report.conftest import write_run
from tests.report.layout import collisions

# 1 run; 3 settings; 4 settings x 2 seeds (optimizer x width: two heat-map rows, seeds as bands)
SETTINGS = {
    1: [["model.width=8", "optim.lr=0.1"]],
    3: [
        ["model.width=8", "optim.lr=0.1"],
        ["model.width=16", "optim.lr=0.1"],
        ["model.width=8", "optim.lr=0.01"],
    ],
    8: [
        [f"optim={o}", f"model.width={w}", f"seed={s}"]
        for o in ("sgd", "adam")
        for w in (8, 16)
        for s in (0, 1)
    ],
}
FIGURES = {
    "nc": lambda groups, runs: [curves_figure(groups, NC_PANELS)],
    "curves": lambda groups, runs: [curves_figure(groups, [["nc1"], ["cdnv"], ["nc2_h"], ["test_acc"]])],
    "grid": lambda groups, runs: [curves_figure(groups, GRID_PANELS)],
    "heatmap": lambda groups, runs: [heatmap_figure(groups, "model.width", "optim.lr")],
    "scores": lambda groups, runs: [scores_figure(groups)],
    "embed": lambda groups, runs: [fig for _, fig in feature_frames(runs[-1], [5])],  # one per run: the last
    "frequency": lambda groups, runs: [frequency_figure(groups)],
    "correlate": lambda groups, runs: [correlate_figure(groups, x="model.width")],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout")
    arrays = {"scores": True, "features": True, "classes": True}
    return {
        n: [write_run(root / str(n), f"r{i}", [*keys, "data=fashion_mnist"], offset=i, **arrays)
            for i, keys in enumerate(settings)]
        for n, settings in SETTINGS.items()
    }  # fmt: skip


@pytest.fixture(scope="module")
def groups(runs):
    """The runs grouped once per run count (the figure functions only read them)."""
    return {n: group_runs(r) for n, r in runs.items()}


@pytest.fixture(scope="module")
def drawn(runs, groups):
    """(kind, n) -> that kind's figures for n runs. A (kind, n)'s format tests follow each other, so its
    figures are built once for them and closed when the next (kind, n) is asked for."""
    last: dict[tuple[str, int], list] = {}

    def close() -> None:
        for figures in last.values():
            for fig in figures:
                plt.close(fig)
        last.clear()

    def figures(kind: str, n: int) -> list:
        if (kind, n) not in last:
            close()
            with paper_style():
                last[kind, n] = FIGURES[kind](groups[n], runs[n])
        return last[kind, n]

    yield figures
    close()


@pytest.mark.parametrize("fmt", ["png", *(pytest.param(f, marks=pytest.mark.slow) for f in ("pdf", "svg"))])
@pytest.mark.parametrize("n", [pytest.param(n, marks=pytest.mark.slow) for n in (1, 3)] + [8])  # fast: 8, png
@pytest.mark.parametrize("kind", list(FIGURES))
def test_no_text_collides_in_any_format(drawn, kind, n, fmt):
    faults = [fault for fig in drawn(kind, n) for fault in collisions(fig, fmt)]
    assert not faults, f"{len(faults)} layout faults in {fmt}:\n" + "\n".join(faults)


@pytest.mark.parametrize("n", list(SETTINGS))
def test_a_new_metric_with_a_long_name_and_no_symbol_fits(runs, n, monkeypatch):
    monkeypatch.setattr(table, "METRICS", dict(table.METRICS))
    key = "mean_logit_margin_between_the_true_class_and_the_runner_up"
    table.register_metric(key, "geometry", "a user's metric without a symbol")
    with paper_style():
        fig = curves_figure(group_runs(runs[n]), [["nc1"], [key], ["nc2_h"]])
    assert [f"{fmt}: {f}" for fmt in ("png", "pdf", "svg") for f in collisions(fig, fmt)] == []
    plt.close(fig)


def test_the_check_finds_collisions_overlaps_text_outside_and_legends_over_data():
    with paper_style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(3.4, 1.7))  # no layout engine
        left.plot([0, 1], [0, 1], label="a line across the whole panel")
        left.legend(loc="center")
        right.set_ylabel("a long y label written over the left panel", fontsize=12)
        fig.text(0.98, 0.5, "beyond the right edge")
    faults = collisions(fig)
    assert "axes 0: legend covers data" in faults
    assert any(f.startswith("axes 1: y label overlaps axes 0") for f in faults)
    assert "figure text 'beyond the right edge' lies outside the figure" in faults
    plt.close(fig)
