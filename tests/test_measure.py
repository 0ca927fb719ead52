"""The measured epoch with the new losses: nearest-learned-center accuracy and reduction-free losses."""

import pytest
import torch

from nclab.config import resolve
from nclab.data import load_dataset
from nclab.data.loader import loaders
from nclab.losses import build_loss
from nclab.measure import measure
from nclab.models import build_model


def setup(overrides):
    cfg = resolve(None, ["model.width=16", "model.depth=1", *overrides])
    torch.manual_seed(0)
    splits = load_dataset(cfg.data, 0)
    model = build_model(cfg, splits.input_shape, 10).eval()
    loss_fn = build_loss(cfg.loss, 10, 16)
    _, train_batches, test_batches = loaders(splits, 128, 256, torch.device("cpu"), 0)
    return splits, model, loss_fn, train_batches, test_batches


@pytest.mark.parametrize("name", ["center", "standalone_center"])
def test_centers_at_the_class_means_give_the_ncc_accuracies(name):
    splits, model, loss_fn, train_batches, test_batches = setup([f"loss={name}"])
    with torch.no_grad():
        h = model(train_batches.prepare(splits.train_x))[1]
        loss_fn.centers.copy_(torch.stack([h[splits.train_y == k].mean(0) for k in range(10)]))
    out = measure(model, loss_fn, train_batches, test_batches, 10)
    assert out["center_acc"] == pytest.approx(out["ncc_acc"])
    assert out["test_center_acc"] == pytest.approx(out["test_ncc_acc"])
    if name == "standalone_center":  # no classifier: accuracy is the nearest center's, W metrics are null
        assert out["train_acc"] == out["center_acc"] and out["nc3"] is None
    else:
        assert out["train_acc"] is not None and out["nc3"] is not None


def test_measured_loss_is_the_per_sample_mean_for_either_reduction():
    mean = measure(*setup(["loss=mse"])[1:], 10)
    summed = measure(*setup(["loss=mse", "loss.reduction=sum"])[1:], 10)
    assert summed["train_loss"] == pytest.approx(mean["train_loss"], rel=1e-6)
    assert "center_acc" not in mean
