"""`nclab visualize`: one PNG per chosen epoch, a GIF with one frame each, direct 2-D features when d = 2."""

import numpy as np
import pytest
from PIL import Image

from nclab.cli import main
from nclab.report.embed import embed_2d


def test_visualize_writes_frames_and_gif(tiny_runs, capsys):
    assert main(["visualize", str(tiny_runs[0]), "--epochs", "1,3", "--method", "pca"]) == 0
    out = tiny_runs[0] / "figures" / "embed"
    assert "2 frames" in capsys.readouterr().out
    for epoch in (1, 3):
        image = np.asarray(Image.open(out / f"epoch_{epoch:04d}.png").convert("RGB"))
        assert image.shape[:2] == (400, 880) and image.std() > 10
    gif = Image.open(out / "embed.gif")
    assert gif.n_frames == 2


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


def test_missing_epoch_is_one_error_line(tiny_runs, capsys):
    assert main(["visualize", str(tiny_runs[0]), "--epochs", "9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "[9]" in err and err.count("\n") == 1
