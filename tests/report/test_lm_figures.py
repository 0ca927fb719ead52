"""Language-model views: `frequency` (per-class vectors against frequency rank, log-binned) and `correlate`
(final metric against test loss across runs, Spearman and Pearson per facet)."""

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr

from nclab.cli import main
from nclab.config import resolve
from nclab.metrics.lm import rank_bins
from nclab.report.groups import group_runs
from nclab.report.lm import correlate_figure, correlations, frequency_figure
from nclab.runs import Run


def runs_with_losses(tmp_path, n=6):
    runs = []
    for i in range(n):
        run = Run.create(resolve(None, [f"name=r{i}", f"out={tmp_path}", f"model.width={16 * (i + 1)}"]))
        cdnv, loss = 1.0 / (i + 1) + 0.01 * (i % 2), 3 - 0.2 * i + 0.05 * (i % 3)
        run.append_metrics({"epoch": 1, "cdnv": cdnv, "test_loss": loss})
        counts = torch.tensor([50.0, 20, 5, 1, 0, 10])
        run.save_arrays("classes", 1, {"counts": counts, "nc1_class": torch.arange(6.0) * (i + 1)})
        runs.append(run)
    return runs


def test_correlations_are_scipys_over_the_runs(tmp_path):
    runs = runs_with_losses(tmp_path)
    groups = group_runs(runs)
    xs = np.array([g.final("cdnv")[0] for g in groups])
    ys = np.array([g.final("test_loss")[0] for g in groups])
    rho, r, n = correlations(groups, "cdnv")
    assert n == 6 and rho == pytest.approx(spearmanr(xs, ys).statistic)
    assert r == pytest.approx(pearsonr(xs, ys).statistic)
    fig = correlate_figure(groups, ["cdnv"])
    (ax,) = fig.axes
    assert ax.get_title().startswith(f"Spearman {rho:+.2f}, Pearson {r:+.2f} (n=6)")
    assert sum(len(c.get_offsets()) for c in ax.collections) == 6


def test_frequency_figure_draws_the_binned_vector_of_the_last_epoch(tmp_path):
    runs = runs_with_losses(tmp_path, 2)
    fig = frequency_figure(group_runs(runs), ["nc1_class"])
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and len(ax.lines) == 2
    centres, means = rank_bins(np.array([50.0, 20, 5, 1, 0, 10]), np.arange(6.0) * 2)
    assert np.allclose(ax.lines[1].get_xdata(), centres) and np.allclose(ax.lines[1].get_ydata(), means)


def test_plot_kinds_from_the_cli(tmp_path):
    runs = runs_with_losses(tmp_path, 4)
    paths = [str(r.path) for r in runs]
    assert main(["plot", *paths, "--kind", "correlate", "--metrics", "cdnv"]) == 0
    assert main(["plot", *paths, "--kind", "frequency", "--metrics", "nc1_class"]) == 0
    assert (runs[0].path / "figures" / "correlate.png").is_file()
    assert (runs[0].path / "figures" / "frequency.png").is_file()
