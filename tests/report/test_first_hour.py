"""`nclab compare` columns, plot axes, UFM curves and the joint t-SNE of issue 25 (runs from make_run)."""

import csv
import io

import matplotlib.pyplot as plt
import numpy as np

from nclab.cli import main
from nclab.report.tables import compare_rows
from nclab.runs import load


def test_compare_metrics_best_epoch_and_no_empty_columns(make_run, capsys):
    runs = [make_run(f"s{s}", [f"seed={s}"], epochs=3 + s, offset=s) for s in (0, 1)]
    rows = compare_rows(runs, metrics=["nc1", "cdnv"])
    (row,) = rows
    epochs = [max(run.metrics(), key=lambda r: r["test_acc"])["epoch"] for run in runs]
    assert row["best_epoch"] == np.mean(epochs) and row["best_epoch:std"] == np.std(epochs, ddof=1)
    assert "nc1" in row and "cdnv:std" in row and "nc3" not in row  # only the asked metrics
    assert all(value is not None for value in row.values())  # no always-empty column
    assert main(["compare", "--format", "csv", "--metrics", "cdnv", *(str(r.path) for r in runs)]) == 0
    header = next(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert "cdnv" in header and "cdnv:std" in header and "cdnv_std" not in header
    assert main(["compare", "--metrics", "nope", str(runs[0].path)]) == 2
    assert "--metrics nope: not in the runs' final records" in capsys.readouterr().err


def test_plot_axes_take_the_sweep_files_short_keys(make_run):
    runs = [
        make_run(f"r{w}{e}", [f"model.width={w}", f"epochs={e}"], epochs=e) for w in (8, 16) for e in (1, 2)
    ]
    assert (
        main(
            ["plot", *(str(r.path) for r in runs), "--kind", "heatmap", "--x", "model.width", "--y", "epochs"]
        )
        == 0
    )
    assert (runs[0].path / "figures" / "heatmap.png").stat().st_size > 0


def test_ufm_curves_count_iterations(tmp_path):
    from nclab.report.groups import group_runs
    from nclab.report.plots import curves_figure, paper_style

    assert main(["ufm", "--quiet", f"out={tmp_path}", "name=u", "K=4", "d=8", "n=5", "iterations=20",
                 "measure.every=10"]) == 0  # fmt: skip
    with paper_style():
        fig = curves_figure(group_runs([load(tmp_path / "u")]), [["nc1"]])
    assert fig.axes[0].get_xlabel() == "iteration"
    plt.close(fig)


def test_tsne_embeds_train_and_test_together(make_run):
    """Test features that repeat train rows land exactly on those rows' points: one embedding for both."""
    import torch

    from nclab.report.embed import feature_frames
    from nclab.report.plots import paper_style

    run = make_run("j")
    labels = torch.arange(40) % 10
    h = torch.randn(40, 5, generator=torch.Generator().manual_seed(0)) + labels[:, None].float()
    test = {"test_features": h[:10].clone(), "test_labels": labels[:10].clone()}
    run.save_arrays("features", 5, {"train_features": h, "train_labels": labels} | test)
    with paper_style():
        ((_, fig),) = feature_frames(run, [5], "pca")
    train, test = (ax.collections for ax in fig.axes[:2])
    train_xy = np.concatenate([c.get_offsets() for c in train])
    for c in test:
        for point in c.get_offsets():
            assert np.isclose(train_xy, point).all(1).any()
    plt.close(fig)
