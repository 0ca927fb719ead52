"""Li et al. 2023 composition (sizes, multiplicities, corners, seeding, cache) and the SVHN filter."""

import pytest
import torch

from nclab.cli import main
from nclab.config import resolve
from nclab.data import load_dataset
from nclab.data.multilabel import compose, place, svhn_filter
from nclab.errors import DataError
from nclab.runs import load
from tests.data.conftest import write_digit_struct, write_mnist


def mlab_cfg(root, *extra, name="mlab_mnist"):
    if not (root / "MNIST").exists():
        write_mnist(root / "MNIST" / "raw", 60, 40)
    sizes = [
        "data.single=3",
        "data.pair=2",
        "data.test_single=2",
        "data.test_pair=1",
    ]
    return resolve(None, [f"data={name}", f"data.root={root}", "data.download=false", *sizes, *extra]).data


def test_place_wraps_around():
    img = torch.arange(4, dtype=torch.uint8).view(1, 1, 2, 2)
    out = place(img, torch.tensor([3]), torch.tensor([1]), 4)
    assert out[0, 0].tolist() == [[0, 2, 3, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]


def test_mlab_mnist_sizes_multiplicities_and_corners(tmp_path):
    s = load_dataset(mlab_cfg(tmp_path), 0)
    assert s.train_x.shape == (10 * 3 + 45 * 2, 1, 56, 56) and s.test_x.shape == (10 * 2 + 45, 1, 56, 56)
    assert s.train_y.dtype == torch.float32 and s.multilabel and s.num_classes == 10
    m = s.train_y.sum(1)
    assert m[:30].eq(1).all() and m[30:].eq(2).all()
    assert s.train_y[:30].argmax(1).tolist() == [k for k in range(10) for _ in range(3)]
    assert s.train_y[30].nonzero().squeeze(1).tolist() == [0, 1] and s.train_y[-1].nonzero().squeeze(
        1
    ).tolist() == [8, 9]
    # singles sit in the bottom-right quadrant rolled by (d, r) < 7, wrapping into rows/cols 0..5 only
    assert s.train_x[:30, :, 6:28].eq(0).all() and s.train_x[:30, :, :, 6:28].eq(0).all()
    assert s.train_x[:30, :, 34:, 34:].gt(0).flatten(1).any(1).all()
    # pairs: both diagonal quadrants hold a digit, the off-diagonal quadrants' interiors are empty
    pairs = s.train_x[30:, 0].float()
    assert (pairs[:, 7:28, 7:28].sum((1, 2)) > 0).all() and (pairs[:, 35:, 35:].sum((1, 2)) > 0).all()
    assert pairs[:, 7:28, 35:56].eq(0).all() and pairs[:, 35:56, 7:28].eq(0).all()
    assert s.mean is None


def test_composition_is_seeded_and_cached(tmp_path):
    a = load_dataset(mlab_cfg(tmp_path), 0)
    cached = list((tmp_path / "multilabel").glob("mlab_mnist-s0-*.safetensors"))
    assert len(cached) == 1
    assert torch.equal(load_dataset(mlab_cfg(tmp_path), 0).train_x, a.train_x)  # read back from the cache
    cached[0].unlink()
    assert torch.equal(load_dataset(mlab_cfg(tmp_path), 0).train_x, a.train_x)  # rebuilt identically
    assert not torch.equal(load_dataset(mlab_cfg(tmp_path), 1).train_x, a.train_x)


def test_cifar_composition_corners_with_margin():
    x = torch.full((40, 3, 32, 32), 200, dtype=torch.uint8)
    y = torch.arange(40) % 4
    gen = torch.Generator().manual_seed(0)
    images, targets = compose(x, y, 4, single=5, pair=2, rolled=False, gen=gen)
    assert images.shape == (4 * 5 + 6 * 2, 3, 64, 64) and targets.sum(1).tolist() == [1.0] * 20 + [2.0] * 12
    filled = images[:, 0] > 0
    for img in filled:  # each image covers a 32x32 block whose corner is within 8 of a canvas corner
        rows = img.any(1).nonzero().squeeze(1)
        assert rows.min() < 8 or rows.max() > 55
    singles = filled[:20]
    assert set(singles[:, 0, 0].tolist() + singles[:, 63, 63].tolist()) <= {False, True}
    corners = [bool(img[:32, :32].sum() > img[32:, 32:].sum()) for img in singles]
    assert 0 < sum(corners) < 20  # random corner for single CIFAR images
    area = filled[20:].sum((1, 2))  # two 32x32 blocks at margins < 8: overlap at most 14 x 14
    assert (area >= 2 * 32 * 32 - 14 * 14).all() and (area <= 2 * 32 * 32).all()


def test_svhn_filter_rules():
    sets = [[1], [1, 0], [2, 3], [2, 3, 4], [1, 2, 3, 4], [5, 5], [1], [1]]
    assert svhn_filter(sets, cap=2) == [0, 2, 3, 5, 6]  # 0 dropped, m4 dropped, third single 1 over the cap
    assert len(svhn_filter([[7]] * 600)) == 543


def test_svhn_multilabel_from_a_format1_tree(tmp_path):
    base = tmp_path / "SVHN" / "format1"
    write_digit_struct(base / "train", [[1], [1, 10], [2, 3], [4, 4], [1, 2, 3, 5, 6]])  # 10 is digit 0
    write_digit_struct(base / "test", [[9, 8, 9]])
    s = load_dataset(resolve(None, ["data=svhn_multilabel", f"data.root={tmp_path}"]).data, 0)
    assert s.train_x.shape == (3, 3, 32, 32) and s.train_x.dtype == torch.uint8 and s.num_classes == 9
    assert s.train_y.tolist()[0] == [1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert s.train_y[1].nonzero().squeeze(1).tolist() == [1, 2] and s.train_y[2].nonzero().squeeze(
        1
    ).tolist() == [3]
    assert s.train_x[2].eq(40).all()  # the 4th image (gray 40), resized to 32x32
    assert s.test_y[0].nonzero().squeeze(1).tolist() == [7, 8] and s.mean == (0.485, 0.456, 0.406)


def test_svhn_multilabel_missing_files(tmp_path):
    with pytest.raises(DataError, match=r"train.tar.gz and test.tar.gz"):
        load_dataset(resolve(None, ["data=svhn_multilabel", f"data.root={tmp_path}"]).data, 0)


@pytest.mark.slow
def test_training_on_a_composed_set_measures_multilabel_metrics(tmp_path, capsys):
    """End to end: mlab_mnist + pick_all_label trains, logs the multi-label keys, and re-measures the same."""
    write_mnist(tmp_path / "MNIST" / "raw", 60, 40)
    args = [
        f"out={tmp_path / 'runs'}", "name=ml", "data=mlab_mnist", f"data.root={tmp_path}",
        "data.download=false",
        "data.single=3", "data.pair=2", "data.test_single=2",
        "data.test_pair=1", "model=convnet", "loss=pick_all_label", "epochs=2", "--quiet",
    ]  # fmt: skip
    assert main(["train", *args]) == 0
    run = load(tmp_path / "runs" / "ml")
    last = run.metrics()[-1]
    for key in [
        "nc1",
        "tagwise_angle",
        "tagwise_coef",
        "tagwise_coef_std",
        "tagwise_residual",
        "train_acc",
        "iou",
    ]:
        assert isinstance(last[key], float), key
    assert main(["measure", str(run.path), "--epochs", "2"]) == 0
    again = run.read_jsonl("measure.jsonl")[-1]
    assert again["tagwise_angle"] == pytest.approx(last["tagwise_angle"], rel=1e-6)


def test_a_class_without_single_label_samples_is_one_error_before_the_run(tmp_path, capsys):
    """SVHN files where digit 9 only appears in pairs: one error line, no run directory left 'running'."""
    base = tmp_path / "SVHN" / "format1"
    write_digit_struct(base / "train", [[d] for d in range(1, 9)] + [[8, 9]])
    write_digit_struct(base / "test", [[d] for d in range(1, 10)])
    args = [
        f"out={tmp_path / 'runs'}",
        "data=svhn_multilabel",
        f"data.root={tmp_path}",
        "loss=pick_all_label",
    ]
    assert main(["train", *args, "epochs=1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: svhn_multilabel: classes [8] have no single-label train sample")
    assert err.count("\n") == 1 and not (tmp_path / "runs").exists()
