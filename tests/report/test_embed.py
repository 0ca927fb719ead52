"""`nclab visualize`: one file per chosen epoch, a GIF with one frame each, direct 2-D features when d = 2,
the same axis limits in every frame, class names from the dataset."""

import numpy as np
import pytest
from PIL import Image

from nclab.cli import main
from nclab.errors import RunError
from nclab.report.embed import embed_2d, feature_frames
from nclab.report.style import paper_style
from nclab.runs import load


@pytest.mark.slow
def test_visualize_writes_frames_and_gif(tiny_runs, capsys):
    assert main(["visualize", str(tiny_runs[0]), "--epochs", "1,3", "--method", "pca"]) == 0
    out = tiny_runs[0] / "figures" / "embed"
    assert "2 frames" in capsys.readouterr().out
    for epoch in (1, 3):
        image = np.asarray(Image.open(out / f"epoch_{epoch:04d}.png").convert("RGB"))
        assert image.shape[1] == round(2 * 3.4 * 300) and image.std() > 10  # two panels, 300 dpi
    gif = Image.open(out / "embed.gif")
    assert gif.n_frames == 2


@pytest.mark.slow
def test_the_report_code_reads_only(tiny_runs, tmp_path):
    """feature_frames of an epoch without saved features is an error naming the fix; nothing is written."""
    import shutil

    copy = shutil.copytree(tiny_runs[1], tmp_path / "copy")
    before = sorted(p.name for p in (copy / "features").iterdir())
    with pytest.raises(RunError, match=r"no saved features for epochs \[2\].*nclab visualize"):
        feature_frames(load(copy), [2, 3], "pca")
    assert sorted(p.name for p in (copy / "features").iterdir()) == before


@pytest.mark.slow
def test_visualize_measures_missing_epochs_from_checkpoints(tiny_runs):
    """Run b saved features only at epoch 3; epoch 2 comes from its checkpoint."""
    assert main(["visualize", str(tiny_runs[1]), "--epochs", "2,3", "--method", "pca"]) == 0
    assert Image.open(tiny_runs[1] / "figures" / "embed" / "embed.gif").n_frames == 2
    assert (tiny_runs[1] / "features" / "epoch_0002.safetensors").is_file()


def test_embed_2d():
    gen = np.random.default_rng(0)
    two = gen.normal(size=(30, 2))
    xy, used = embed_2d(two)
    assert used == "features" and np.array_equal(xy, two)
    xy, used = embed_2d(gen.normal(size=(30, 5)), "pca")
    assert used == "PCA" and xy.min() == 0 and xy.max() == pytest.approx(1)
    blobs = np.concatenate([gen.normal(size=(20, 5)), gen.normal(size=(20, 5)) + 20])
    xy, used = embed_2d(blobs, "auto")
    assert used == "t-SNE" and xy.shape == (40, 2)
    centre_gap = np.linalg.norm(xy[:20].mean(0) - xy[20:].mean(0))
    assert centre_gap > 3 * max(xy[:20].std(0).max(), xy[20:].std(0).max())  # the two blobs stay apart


@pytest.mark.slow
def test_a_truncated_features_file_is_skipped_with_a_warning(tiny_runs, tmp_path, capsys):
    import shutil

    copy = shutil.copytree(tiny_runs[0], tmp_path / "copy")
    path = copy / "features" / "epoch_0002.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    assert main(["visualize", str(copy), "--method", "pca"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and "epoch_0002" in err and err.count("\n") == 1
    assert sorted(p.name for p in (copy / "figures" / "embed").glob("*.png")) == [
        "epoch_0001.png", "epoch_0003.png"
    ]  # fmt: skip


def test_missing_epoch_is_one_error_line(tiny_runs, capsys):
    assert main(["visualize", str(tiny_runs[0]), "--epochs", "9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "[9]" in err and err.count("\n") == 1


def test_frames_share_axis_limits_and_name_classes(make_run):
    """The features spread out epoch by epoch (h = e * (k, -k) + noise); every frame still has the axes of
    all frames together, and the legend lists Fashion-MNIST's class names."""
    import matplotlib.pyplot as plt
    from torchvision import datasets

    run = make_run("f", ["data=fashion_mnist"], features=True)
    with paper_style():
        frames = feature_frames(run)
    assert [epoch for epoch, _ in frames] == [1, 2, 3, 4, 5]
    limits = {(ax.get_xlim(), ax.get_ylim()) for _, fig in frames for ax in fig.axes}
    assert len(limits) == 1
    (xlim, ylim) = limits.pop()
    last = run.load_arrays("features", 5)["train_features"].numpy()
    assert xlim[0] < last[:, 0].min() and xlim[1] > last[:, 0].max() and ylim[0] < last[:, 1].min()
    assert [t.get_text() for t in frames[0][1].legends[0].get_texts()] == datasets.FashionMNIST.classes
    for _, fig in frames:
        plt.close(fig)


@pytest.mark.slow
def test_visualize_svg_frames_and_gif(make_run):
    run = make_run("g", features=True)
    assert main(["visualize", str(run.path), "--format", "svg"]) == 0
    assert Image.open(run.path / "figures" / "embed" / "embed.gif").n_frames == 5
    assert (run.path / "figures" / "embed" / "epoch_0005.svg").read_text().count("<svg") == 1
