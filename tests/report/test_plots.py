"""Figures drawn from runs with known metrics: every panel overlays every run with that run's data, seeds
collapse into one line with a min-max or std band, heat-map cells are the runs' final metrics, violins sit at
the right places, every kind is written as pdf and svg, and the paper style holds."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from nclab.cli import main
from nclab.metrics import table
from nclab.report.groups import group_runs
from nclab.report.plots import GRID_PANELS, NC_PANELS, curves_figure, heatmap_figure, scores_figure
from nclab.report.style import PALETTE, label, paper_style
from tests.report.conftest import KEYS, curve


def lines(ax):
    return [line for line in ax.get_lines() if len(line.get_xdata())]


@pytest.mark.parametrize("panels", [NC_PANELS, GRID_PANELS, [["nc1"], ["cdnv"], ["nc2_h"]]])
def test_three_runs_are_three_lines_per_panel_with_their_data(make_run, panels):
    runs = [make_run(f"r{i}", [f"optim.lr={lr}"], offset=i) for i, lr in enumerate([0.1, 0.01, 0.001])]
    with paper_style():
        fig = curves_figure(group_runs(runs), panels)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert len(axes) == len(panels)
    for ax, keys in zip(axes, panels, strict=True):
        drawn = lines(ax)
        assert len(drawn) == 3 * len(keys)  # one line per run and key: none dropped, none repeated
        for i in range(3):
            for j, key in enumerate(keys):
                line = drawn[i * len(keys) + j]
                assert line.get_xdata().tolist() == [1, 2, 3, 4, 5]
                assert line.get_ydata().tolist() == [curve(KEYS.index(key), i, e) for e in range(1, 6)]
                assert line.get_color() == PALETTE[i] and line.get_linestyle() == ["-", "--"][j]
        assert ax.get_yscale() == ("log" if table.metric(keys[0]).log else "linear")
        assert all(float(t).is_integer() for t in ax.get_xticks())  # integer epoch ticks
        assert ax.get_ylabel() == (table.metric(keys[0]).symbol if len(keys) == 1 else "accuracy")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:3] == ["optim.lr=0.1", "optim.lr=0.01", "optim.lr=0.001"]  # config keys, not dir names
    plt.close(fig)


@pytest.mark.parametrize("band", ["minmax", "std"])
def test_three_seeds_are_one_line_with_a_band(make_run, band):
    runs = [make_run(f"s{s}", [f"seed={s}"], offset=s) for s in (0, 1, 2)]
    groups = group_runs(runs)
    assert len(groups) == 1 and len(groups[0].runs) == 3
    with paper_style():
        fig = curves_figure(groups, [["nc2_h"]], band)
    ax = fig.axes[0]
    (line,) = lines(ax)
    values = np.array([[curve(KEYS.index("nc2_h"), s, e) for e in range(1, 6)] for s in (0, 1, 2)])
    assert np.allclose(line.get_ydata(), values.mean(0))
    low, high = (
        (values.min(0), values.max(0))
        if band == "minmax"
        else (values.mean(0) - values.std(0, ddof=1), values.mean(0) + values.std(0, ddof=1))
    )
    (band_patch,) = ax.collections
    vertices = band_patch.get_paths()[0].vertices
    for e in range(1, 6):
        ys = vertices[np.isclose(vertices[:, 0], e), 1]
        assert np.isclose(ys.min(), low[e - 1]) and np.isclose(ys.max(), high[e - 1])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["s0 (3 seeds)"]
    plt.close(fig)


def test_each_seed_keeps_one_line_per_run(make_run):
    runs = [make_run(f"s{s}", [f"seed={s}"], offset=s) for s in (0, 1, 2)]
    with paper_style():
        fig = curves_figure(group_runs(runs, by_seed=False), [["nc1"]])
    assert len(lines(fig.axes[0])) == 3 and not fig.axes[0].collections
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["seed=0", "seed=1", "seed=2"]
    plt.close(fig)


def test_a_key_no_run_has_leaves_its_panel_empty(make_run):
    """Fixed panels (nc, grid, TensorBoard) draw what the runs have (head-less runs: no nc3_duality)."""
    with paper_style():
        fig = curves_figure(group_runs([make_run("r")]), [["nc1"], ["nc3_duality"]])
    assert len(lines(fig.axes[0])) == 1 and not lines(fig.axes[1])
    plt.close(fig)


def test_heatmap_cells_are_the_final_metrics(make_run):
    runs, expected = [], {}
    for loss in ("ce", "mse"):
        for i, width in enumerate((16, 32, 64)):
            for j, epochs in enumerate((2, 4)):
                offset = len(runs)
                runs.append(make_run(f"{loss}{width}_{epochs}", [f"loss={loss}", f"model.width={width}",
                                     f"epochs={epochs}"], epochs=epochs, offset=offset))  # fmt: skip
                for m in ("nc1", "test_acc"):
                    expected[loss, m, j, i] = curve(KEYS.index(m), offset, epochs)
    with paper_style():
        fig = heatmap_figure(group_runs(runs), "model.width", "train.epochs", ["nc1", "test_acc"])
    axes = fig.axes
    assert len(axes) == 4
    for row, loss in enumerate(("ce", "mse")):
        assert f"loss={loss}" in axes[row * 2].get_ylabel()
        for col, metric in enumerate(("nc1", "test_acc")):
            cells = axes[row * 2 + col].collections[0].get_array()
            assert cells.shape == (2, 3)
            for (j, i), value in np.ndenumerate(cells):
                assert value == expected[loss, metric, j, i]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["16", "32", "64"]  # whole floats as integers
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["2", "4"]
    assert [ax.get_title() for ax in axes[:2]] == ["$\\mathcal{NC}_1$", "$\\mathrm{acc}_{\\mathrm{test}}$"]
    plt.close(fig)


def test_heatmap_baseline_rows_are_absolute_differences(make_run, capsys):
    """`--baseline loss=ce`: each other loss's cell is |its value - ce's| (Zhou et al. 2022's maps)."""
    runs, finals = [], {}
    for loss in ("ce", "mse", "focal"):
        for i, width in enumerate((16, 32)):
            offset = len(runs)
            runs.append(make_run(f"{loss}{width}", [f"loss={loss}", f"model.width={width}", "epochs=2"],
                                 epochs=2, offset=offset))  # fmt: skip
            finals[loss, i] = curve(KEYS.index("test_acc"), offset, 2)
    with paper_style():
        fig = heatmap_figure(group_runs(runs), "model.width", "train.epochs", ["test_acc"], "loss=ce")
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == f"|{label('test_acc')} $-$ loss=ce|"
    for ax, loss in zip(fig.axes, ("mse", "focal"), strict=True):
        assert f"loss={loss}" in ax.get_ylabel()
        cells = ax.collections[0].get_array()
        assert cells.tolist() == [[abs(finals[loss, i] - finals["ce", i]) for i in (0, 1)]]
    plt.close(fig)
    args = ["plot", *(str(r.path) for r in runs), "--kind", "heatmap", "--x", "model.width"]
    assert main([*args, "--y", "train.epochs", "--baseline", "loss=nll"]) == 2
    assert "--baseline loss=nll: not one row of the heat maps (rows: loss=ce; loss=mse; loss=focal)" in (
        capsys.readouterr().err
    )


def test_heatmap_averages_seeds(make_run):
    runs = [make_run(f"s{s}", [f"seed={s}", "model.width=8", "epochs=3"], epochs=3, offset=s) for s in (0, 1)]
    with paper_style():
        fig = heatmap_figure(group_runs(runs), "model.width", "train.epochs", ["nc1"])
    mean = np.mean([curve(KEYS.index("nc1"), s, 3) for s in (0, 1)])
    assert fig.axes[0].collections[0].get_array()[0, 0] == pytest.approx(mean)
    plt.close(fig)


def test_violins_against_a_config_key(make_run):
    runs = [
        make_run(f"b{m}_{loss}", [f"head.bias_mean={m}", f"loss={loss}"], scores=True, offset=m)
        for m in (0, 2, 5)
        for loss in ("ce", "bce")
    ]
    with paper_style():
        fig = scores_figure(group_runs(runs), x="head.bias_mean")
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["loss=ce", "loss=bce"]
    for ax in panels:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "2", "5"]
        assert len(ax.collections) == 3 * 3 * 4  # 3 values x 3 populations x (body, bars, mins, maxes)
        assert ax.get_xlabel() == "head.bias_mean"
    plt.close(fig)


def test_violins_per_epoch_pool_seeds(make_run):
    runs = [make_run(f"s{s}", [f"seed={s}"], scores=True, offset=s) for s in (0, 1)]
    with paper_style():
        fig = scores_figure(group_runs(runs), epochs=[2, 5])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "5"]
    bias_body = ax.collections[2 * 4]  # the first epoch's third violin
    assert bias_body.get_paths()[0].vertices[:, 1].max() > 0.7  # seed 1's biases (mean 1) are in it
    plt.close(fig)


KIND_ARGS = {
    "nc": [],
    "curves": ["--metrics", "nc1,cdnv"],
    "grid": [],
    "heatmap": ["--x", "model.width", "--y", "optim.lr"],
    "scores": [],
    "embed": ["--epochs", "2,4"],
}


@pytest.mark.parametrize("fmt", [pytest.param("pdf", marks=pytest.mark.slow), "svg"])  # fast: svg
@pytest.mark.parametrize(
    "kind", [pytest.param(k, marks=pytest.mark.slow) if k == "embed" else k for k in KIND_ARGS]
)  # embed: t-SNE frames and a GIF
def test_every_kind_in_vector_formats(make_run, tmp_path, capsys, kind, fmt):
    settings = [
        ("model.width=8", "optim.lr=0.1"),
        ("model.width=16", "optim.lr=0.1"),
        ("model.width=8", "optim.lr=0.01"),
    ]
    runs = [
        make_run(f"r{i}", [*keys, "data=fashion_mnist"], scores=True, features=True, offset=i)
        for i, keys in enumerate(settings)
    ]
    out = tmp_path / "out"
    args = ["plot", *(str(r.path) for r in runs), "--kind", kind, "--format", fmt, "--out", str(out)]
    assert main([*args, *KIND_ARGS[kind]]) == 0
    printed = capsys.readouterr().out.splitlines()
    paths = [line for line in printed if line.startswith(str(out))]
    if kind == "embed":
        assert len(paths) == 3 * 3 and paths[-1] == str(out / "r2" / "embed.gif")
        paths = [p for p in paths if not p.endswith(".gif")]
    else:
        assert paths == [str(out / f"{kind}.{fmt}")]
        assert printed[1].startswith(f"{kind}: ") and "setting(s) of 3 run(s)" in printed[1]  # the caption
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        assert path.endswith(f".{fmt}")
        if fmt == "pdf":
            assert data.startswith(b"%PDF") and b"/Subtype /Image" not in data  # vector, no raster
        else:
            assert b"<svg" in data and b"<image" not in data and b"font-family" in data  # text stays text


def test_heatmap_needs_both_keys(make_run, capsys):
    runs = [make_run(f"r{w}", [f"model.width={w}"]) for w in (8, 16)]
    assert main(["plot", *(str(r.path) for r in runs), "--kind", "heatmap", "--x", "model.width"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --y is missing") and "model.width" in err and err.count("\n") == 1


def test_a_torn_metrics_line_is_ignored_with_a_warning(tiny_runs, tmp_path, capsys):
    import shutil

    copy = shutil.copytree(tiny_runs[0], tmp_path / "copy")
    with open(copy / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 4, "nc1": 0.')
    assert main(["plot", str(copy), "--kind", "curves"]) == 0
    assert main(["compare", str(copy)]) == 0
    out, err = capsys.readouterr()
    assert err.count("warning: ") == 2 and "torn last line" in err
    assert "| 3 |" in out  # compare's last epoch is the last complete line


def test_unknown_metric_is_one_error_line(make_run, capsys):
    run = make_run("r")
    assert main(["plot", str(run.path), "--kind", "curves", "--metrics", "nc1,nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --metrics nope") and err.count("\n") == 1


def test_default_figure_of_a_trained_run(tiny_runs):
    """`nclab train` writes figures/nc.png of the real run: serif paper style, 300 dpi, not blank."""
    import matplotlib.image

    image = matplotlib.image.imread(tiny_runs[0] / "figures" / "nc.png")
    assert image.shape[1] == round(2 * 3.4 * 300) and image[..., :3].std() > 0.05


def test_the_caption_holds_what_the_axes_leave_out(make_run, capsys):
    """Axes show symbols; `nclab plot` prints each drawn metric's symbol, key, description and source."""
    runs = [make_run(f"s{s}", [f"seed={s}"], offset=s) for s in (0, 1)]
    assert main(["plot", *(str(r.path) for r in runs), "--kind", "grid", "--band", "std"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[1]
        == "grid: 1 setting(s) of 2 run(s); lines: mean over seeds; band: mean +- 1 std (ddof=1) over seeds."
    )
    assert lines[2:] == [
        f"  {table.metric(k).symbol} ({k}): {table.metric(k).description} [{table.metric(k).source}]"
        for (k,) in GRID_PANELS
    ]


def test_legend_names_only_differing_keys_section_first_with_seeds_as_bands(make_run):
    runs = [
        make_run(f"{o}{s}", [f"optim={o}", "optim.lr=0.01", f"seed={s}"], offset=s)
        for o in ("sgd", "adam")
        for s in (0, 1)
    ]
    with paper_style():
        fig = curves_figure(group_runs(runs), [["nc1"]])
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["optim=sgd (2 seeds)", "optim=adam (2 seeds)"]
    assert len(lines(fig.axes[0])) == 2 and len(fig.axes[0].collections) == 2  # a line and a band per setting
    plt.close(fig)
