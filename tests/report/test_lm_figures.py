"""Language-model views: `frequency` (per-class vectors against frequency rank, log-binned) and `correlate`
(final metric against test loss across runs, Spearman and Pearson per facet)."""

import csv
import io

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


def runs_in_two_facets(tmp_path):
    """8 runs, model.depth 1 or 2, final cdnv, nc1 and test_loss of known values (nc1 only at depth 2)."""
    runs = []
    for i in range(8):
        depth = 1 + i % 2
        cfg = resolve(
            None, [f"name=r{i}", f"out={tmp_path}", f"model.width={8 * (i + 1)}", f"model.depth={depth}"]
        )
        run = Run.create(cfg)
        record = {"epoch": 1, "cdnv": (i * 7 % 5) + 0.1 * i, "test_loss": 3 - 0.3 * i + 0.4 * (i % 3)}
        run.append_metrics({"epoch": 0, "cdnv": 9.0, "test_loss": 9.0})  # not the final record
        run.append_metrics(record | ({"nc1": 1 / (i + 1) ** 2} if depth == 2 else {}))
        runs.append(run)
    return runs


def test_compare_correlate_is_scipys_per_metric_and_facet(tmp_path, capsys):
    runs = runs_in_two_facets(tmp_path)
    paths = [str(r.path) for r in runs]
    finals = [r.metrics()[-1] for r in runs]
    assert (
        main(
            [
                "compare",
                *paths,
                "--correlate",
                "--metrics",
                "cdnv,nc1",
                "--x",
                "model.depth",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["metric"], r["model.depth"], r["n"]) for r in rows] == [
        ("cdnv", "1", "4"), ("cdnv", "2", "4"), ("nc1", "1", "0"), ("nc1", "2", "4"),
    ]  # fmt: skip
    for row in rows[:2] + rows[3:]:
        kept = [f for i, f in enumerate(finals) if 1 + i % 2 == int(row["model.depth"])]
        xs, ys = [f[row["metric"]] for f in kept], [f["test_loss"] for f in kept]
        assert float(row["spearman"]) == pytest.approx(spearmanr(xs, ys).statistic, rel=1e-12)
        assert float(row["pearson"]) == pytest.approx(pearsonr(xs, ys).statistic, rel=1e-12)
    assert rows[2]["spearman"] == rows[2]["pearson"] == ""  # no nc1 at depth 1: undefined, left empty
    assert main(["compare", *paths, "--correlate"]) == 0  # all runs, the default metrics that exist
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["| metric | spearman | pearson | n |", "| --- | --- | --- | --- |"]
    xs, ys = [f["cdnv"] for f in finals], [f["test_loss"] for f in finals]
    rho, r = spearmanr(xs, ys).statistic, pearsonr(xs, ys).statistic
    assert lines[2] == f"| cdnv | {rho:.4g} | {r:.4g} | 8 |" and lines[3].startswith("| nc1 |")
    assert len(lines) == 4


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--x", "model.depth"], "--x groups the rows of --correlate"),
        (["--correlate", "--metrics", "nope"], "--metrics nope: not in the runs' final records"),
        (["--correlate", "--metrics", "cdnv", "--x", "model.nope"], "--x model.nope: not a config key"),
        (["--correlate", "--each-seed"], "--correlate has a row per metric, not per run"),
    ],
)
def test_compare_correlate_bad_input_is_one_line(tmp_path, capsys, args, fragment):
    paths = [str(r.path) for r in runs_in_two_facets(tmp_path)]
    assert main(["compare", *paths, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and fragment in err, err


def test_compare_correlate_without_test_loss_is_one_line(tmp_path, capsys):
    paths = []
    for i in range(3):
        run = Run.create(resolve(None, [f"name=r{i}", f"out={tmp_path}", f"model.width={8 * (i + 1)}"]))
        run.append_metrics({"epoch": 1, "cdnv": float(i)})
        paths.append(str(run.path))
    assert main(["compare", "--correlate", "--metrics", "cdnv", *paths]) == 2  # the flag takes no value
    assert capsys.readouterr().err.strip() == "error: no run has a final test_loss to correlate with"
