"""Measurement: in-training values equal the one-shot metrics, `nclab measure` reproduces them from
checkpoints, bf16 features and head-less models are handled, multi-hot targets use the multi-label metrics."""

import pytest
import torch
from torch import nn

from nclab.cli import main
from nclab.config import resolve
from nclab.data import load_dataset
from nclab.data.loader import loaders
from nclab.losses import Loss, build_loss
from nclab.measure import measure
from nclab.metrics import nc_metrics
from nclab.metrics.multilabel import multilabel_metrics
from nclab.metrics.scores import uniform_accuracy
from nclab.models import build_model
from nclab.runs import load


def close(a, b, rel):
    if a is None or b is None:
        return a is b
    return a == pytest.approx(b, rel=rel, abs=1e-9)


def test_in_training_values_equal_nc_metrics_on_stored_features(tiny_runs):
    run = load(tiny_runs[0])
    for record in run.metrics():
        f = run.load_arrays("features", record["epoch"])
        state = run.load_checkpoint(record["epoch"])
        w, b = state["head.weight"], state["head.bias"]
        want = nc_metrics(f["train_features"], f["train_labels"], w, b, f["test_features"], f["test_labels"])
        for key, value in want.items():
            assert close(record[key], value, 1e-6), (record["epoch"], key)
        s = f["train_features"].double() @ w.double().T
        assert record["uniform_acc"] == pytest.approx(uniform_accuracy(s, f["train_labels"], b)[0])
        assert record["bias_sign"] == 1 and record["score_pos_mean"] > record["score_neg_mean"]


def test_measure_from_checkpoints_equals_in_training(tiny_runs, capsys):
    run = load(tiny_runs[0])
    assert main(["measure", str(run.path), "--epochs", "1,3"]) == 0
    assert "measured epochs 1..3 (2)" in capsys.readouterr().out
    logged = {r["epoch"]: r for r in run.metrics()}
    measured = run.read_jsonl("measure.jsonl")
    assert [r["epoch"] for r in measured] == [1, 3]
    for record in measured:
        for key, value in record.items():
            assert close(value, logged[record["epoch"]][key], 1e-6), key
    assert main(["measure", str(run.path), "--epochs", "2", "--split", "test"]) == 0
    measured = {r["epoch"]: r for r in run.read_jsonl("measure.jsonl")}
    assert sorted(measured) == [1, 2, 3]  # earlier epochs kept
    assert set(measured[2]) == {"epoch", "test_loss", "test_nc1", "test_ncc_acc", "test_acc", "test_nc4_ncc"}
    assert measured[2]["test_acc"] == pytest.approx(logged[2]["test_acc"])


def test_measure_with_a_corrupt_checkpoint_keeps_measured_epochs(tiny_runs, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_runs[1], copy)
    (copy / "checkpoints" / "epoch_0002.safetensors").write_bytes(b"not a checkpoint")
    assert main(["measure", str(copy)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "epoch_0002" in err and "corrupt" in err
    assert [r["epoch"] for r in load(copy).read_jsonl("measure.jsonl")] == [1]
    assert main(["measure", str(copy), "--epochs", "7"]) == 1
    assert "no checkpoint for epochs [7]" in capsys.readouterr().err
    assert main(["measure", str(copy), "--split", "val"]) == 1


class Net(nn.Module):
    """A fixed random feature map with an optional linear head, features in `dtype`."""

    def __init__(self, d=8, k=3, head=True, dtype=torch.float32):
        super().__init__()
        self.body = nn.Linear(5, d).to(dtype)
        self.dtype = dtype
        if head:
            self.head = nn.Linear(d, k).to(dtype)

    def forward(self, x):
        h = torch.relu(self.body(x.to(self.dtype)))
        return (self.head(h) if hasattr(self, "head") else None), h


class FeatureLoss(Loss):
    def sample_loss(self, logits, features, targets):
        return features.square().mean(1)


def batches(x, y, size=16):
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


def data(n=90, k=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    return torch.randn(n, 5, generator=gen) + y[:, None], y


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_features_accumulate_in_float64(dtype):
    torch.manual_seed(0)
    net = Net(dtype=dtype)
    x, y = data()
    xt, yt = data(seed=1)
    got = measure(net, FeatureLoss(3), batches(x, y), batches(xt, yt), 3).record
    with torch.no_grad():
        h, ht = net(x)[1], net(xt)[1]
    assert h.dtype == dtype
    want = nc_metrics(h, y, net.head.weight, net.head.bias, ht, yt)
    for key, value in want.items():
        assert close(got[key], value, 1e-9), key
    assert got["train_loss"] == pytest.approx(h.float().square().mean().item(), rel=1e-3)


def test_model_without_head_gets_null_classifier_keys():
    net = Net(head=False)
    x, y = data()
    got = measure(net, FeatureLoss(3), batches(x, y), batches(*data(seed=1)), 3).record
    with torch.no_grad():
        want = nc_metrics(net(x)[1], y, None)
    assert got["nc1"] == pytest.approx(want["nc1"])
    for key in ["nc2_w", "nc3", "nc4_bias", "train_acc", "test_acc", "uniform_acc", "score_pos_mean"]:
        assert got.get(key) is None, key
    assert 0 < got["compactness"] <= 1 and got["distinctiveness"] > 0


def test_center_loss_runs_get_nearest_center_accuracy():
    net = Net()
    loss = FeatureLoss(3)
    loss.centers = nn.Parameter(torch.zeros(3, 8))
    loss.centers.data[1] = 100.0  # everything is nearest to centre 0 or 2 (both zero): argmin picks 0
    x, y = data()
    got = measure(net, loss, batches(x, y), batches(x, y), 3).record
    assert got["center_acc"] == pytest.approx(1 / 3) and got["test_center_acc"] == pytest.approx(1 / 3)


def test_multi_hot_targets_use_multilabel_metrics():
    torch.manual_seed(1)
    net = Net(k=3)
    x, y = data(n=60)
    hot = nn.functional.one_hot(y, 3).double()
    hot[torch.arange(0, 60, 4), (y[::4] + 1) % 3] = 1  # every 4th sample gets a second label
    got = measure(
        net, FeatureLoss(3), batches(x, hot), batches(x, hot), 3, multilabel=True, features_per_class=5
    )
    with torch.no_grad():
        h = net(x)[1]
    want = multilabel_metrics(h, hot, net.head.weight, net.head.bias, h, hot)
    for key, value in want.items():
        assert close(got.record[key], value, 1e-9), key
    assert got.record["tagwise_angle"] is not None
    assert got.features["train_features"].shape == (15, 8)  # 5 per class, multiplicity-1 samples


def test_tensorboard_events_are_grouped(tiny_runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tiny_runs[1]))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"nc/nc1", "accuracy/test_acc", "loss/train_loss", "scores/uniform_acc"} <= set(tags)
    assert [e.step for e in events.Scalars("nc/nc1")] == [1, 2, 3]


def test_saved_arrays(tiny_runs):
    a, b = load(tiny_runs[0]), load(tiny_runs[1])
    assert a.array_epochs("features") == [1, 2, 3] and 3 in b.array_epochs("features")
    assert b.array_epochs("scores") == [1, 2, 3]
    scores = b.load_arrays("scores", 3)
    assert scores["bias"].shape == (10,) and len(scores["score_neg"]) == 2000
    f = b.load_arrays("features", 3)
    assert f["train_features"].shape[1] == 16 and f["test_features"].shape[1] == 16
    counts = torch.bincount(f["train_labels"])
    assert counts.tolist() == [10] * 10  # the first 10 of each class


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
    out = measure(model, loss_fn, train_batches, test_batches, 10).record
    assert out["center_acc"] == pytest.approx(out["ncc_acc"])
    assert out["test_center_acc"] == pytest.approx(out["test_ncc_acc"])
    if name == "standalone_center":  # no classifier: accuracy is the nearest center's, W metrics are null
        assert out["train_acc"] == out["center_acc"] and out["nc3"] is None
    else:
        assert out["train_acc"] is not None and out["nc3"] is not None


def test_measured_loss_is_the_per_sample_mean_for_either_reduction():
    mean = measure(*setup(["loss=mse"])[1:], 10).record
    summed = measure(*setup(["loss=mse", "loss.reduction=sum"])[1:], 10).record
    assert summed["train_loss"] == pytest.approx(mean["train_loss"], rel=1e-6)
    assert "center_acc" not in mean


def test_measure_restores_learned_centers(tmp_path):
    """Center-loss checkpoints carry the centers; re-measuring uses them, not fresh ones."""
    common = [f"out={tmp_path}", "name=c", "epochs=2", "model.width=16", "model.depth=1", "--quiet"]
    assert main(["train", "loss=center", *common]) == 0
    assert main(["measure", str(tmp_path / "c")]) == 0
    run = load(tmp_path / "c")
    trained, measured = run.metrics()[-1], run.read_jsonl("measure.jsonl")[-1]
    for key in ["center_acc", "test_center_acc", "train_loss", "nc1"]:
        assert measured[key] == pytest.approx(trained[key], rel=1e-6), key
