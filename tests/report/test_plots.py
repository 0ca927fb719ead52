"""Every figure exists, has the expected size and is not blank."""

import matplotlib.image
import pytest

from nclab.cli import main


def pixels(path):
    image = matplotlib.image.imread(path)
    return image.shape[:2], image[..., :3].std()


@pytest.mark.parametrize(
    ("args", "name", "size"),
    [
        (["--kind", "curves", "--metrics", "nc1,cdnv,uniform_acc,nc2_h"], "curves.png", (700, 1290)),
        (["--kind", "grid"], "grid.png", (700, 900)),
        (["--kind", "scores"], "scores.png", (720, 1160)),
        ([], "nc.png", (700, 1300)),
    ],
)
def test_figures(tiny_runs, capsys, args, name, size):
    assert main(["plot", *map(str, tiny_runs), *args]) == 0
    path = tiny_runs[0] / "figures" / name
    assert capsys.readouterr().out.strip() == str(path)
    shape, spread = pixels(path)
    assert shape == size and spread > 0.05


def test_curves_use_log_scale_for_nc1(tiny_runs):
    import matplotlib.pyplot as plt

    from nclab.report.plots import plot_curves
    from nclab.runs import load

    captured = {}
    original = plt.Figure.savefig

    def spy(fig, *a, **k):
        captured["scales"] = [ax.get_yscale() for ax in fig.axes]
        return original(fig, *a, **k)

    plt.Figure.savefig = spy
    try:
        plot_curves([load(tiny_runs[0])], ["nc1", "nc2_h", "cdnv"])
    finally:
        plt.Figure.savefig = original
    assert captured["scales"] == ["log", "linear", "log"]


def test_unknown_metric_is_one_error_line(tiny_runs, capsys):
    assert main(["plot", str(tiny_runs[0]), "--kind", "curves", "--metrics", "nc1,nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --metrics nope") and err.count("\n") == 1
