"""Measurement: in-training values equal the one-shot metrics, `nclab measure` reproduces them from
checkpoints, bf16 features and head-less models are handled, multi-hot targets use the multi-label metrics."""

import json

import pytest
import torch
from torch import nn

from nclab.cli import main
from nclab.config import resolve
from nclab.data import load_dataset
from nclab.data.loader import loaders
from nclab.errors import ConfigError
from nclab.losses import Loss, build_loss
from nclab.measure import Settings, measure
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


def test_measure_skips_a_corrupt_checkpoint_with_a_warning(tiny_runs, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_runs[1], copy)
    path = copy / "checkpoints" / "epoch_0002.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 1  # one flipped bit in a tensor
    path.write_bytes(bytes(data))
    assert main(["measure", str(copy)]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and err.count("\n") == 1 and "epoch_0002" in err and "checksum" in err
    assert [r["epoch"] for r in load(copy).read_jsonl("measure.jsonl")] == [1, 3]
    assert main(["measure", str(copy), "--epochs", "7"]) == 2
    assert "no checkpoint for epochs [7]" in capsys.readouterr().err
    assert main(["measure", str(copy), "--split", "val"]) == 2


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
    got = measure(net, FeatureLoss(3), batches(x, y), batches(xt, yt), Settings(3)).record
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
    got = measure(net, FeatureLoss(3), batches(x, y), batches(*data(seed=1)), Settings(3)).record
    with torch.no_grad():
        want = nc_metrics(net(x)[1], y, None)
    assert got["nc1"] == pytest.approx(want["nc1"])
    for key in ["nc2_w", "nc3", "nc4_bias", "train_acc", "test_acc", "uniform_acc", "score_pos_mean"]:
        assert got.get(key) is None, key
    assert 0 < got["compactness"] <= 1 and got["distinctiveness"] > 0


class CountingLoss(FeatureLoss):
    """Reports one extra metric per split: the fraction of samples of class 0."""

    extra_metrics = ("center_acc",)

    def metrics(self, features, labels):
        return {"center_acc": (labels == 0).double().mean().item()}


def test_a_loss_adds_its_own_metrics_per_split():
    x, y = data()
    xt, yt = data(n=30)
    got = measure(Net(), CountingLoss(3), batches(x, y), batches(xt[:12], yt[:12]), Settings(3)).record
    assert got["center_acc"] == pytest.approx(1 / 3) and got["test_center_acc"] == pytest.approx(4 / 12)
    assert (
        "center_acc" not in measure(Net(), FeatureLoss(3), batches(x, y), batches(x, y), Settings(3)).record
    )


def test_multi_hot_targets_use_multilabel_metrics():
    torch.manual_seed(1)
    net = Net(k=3)
    x, y = data(n=60)
    hot = nn.functional.one_hot(y, 3).double()
    hot[torch.arange(0, 60, 4), (y[::4] + 1) % 3] = 1  # every 4th sample gets a second label
    got = measure(
        net,
        FeatureLoss(3),
        batches(x, hot),
        batches(x, hot),
        Settings(3, multilabel=True, features_per_class=5),
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
    out = measure(model, loss_fn, train_batches, test_batches, Settings(10)).record
    assert out["center_acc"] == pytest.approx(out["ncc_acc"])
    assert out["test_center_acc"] == pytest.approx(out["test_ncc_acc"])
    if name == "standalone_center":  # no classifier: accuracy is the nearest center's, W metrics are null
        assert out["train_acc"] == out["center_acc"] and out["nc3"] is None
    else:
        assert out["train_acc"] is not None and out["nc3"] is not None


def test_measured_loss_is_the_per_sample_mean_for_either_reduction():
    mean = measure(*setup(["loss=mse"])[1:], Settings(10)).record
    summed = measure(*setup(["loss=mse", "loss.reduction=sum"])[1:], Settings(10)).record
    assert summed["train_loss"] == pytest.approx(mean["train_loss"], rel=1e-6)
    assert "center_acc" not in mean


@pytest.mark.slow
def test_measure_restores_learned_centers(tmp_path):
    """Center-loss checkpoints carry the centers; re-measuring uses them, not fresh ones."""
    common = [f"out={tmp_path}", "name=c", "epochs=2", "model.width=16", "model.depth=1"]
    common += ["train.figures=false", "--quiet"]
    assert main(["train", "loss=center", *common]) == 0
    assert main(["measure", str(tmp_path / "c")]) == 0
    run = load(tmp_path / "c")
    trained, measured = run.metrics()[-1], run.read_jsonl("measure.jsonl")[-1]
    for key in ["center_acc", "test_center_acc", "train_loss", "nc1"]:
        assert measured[key] == pytest.approx(trained[key], rel=1e-6), key


def test_layers_get_the_classifier_free_metrics_and_ood_gets_nc5():
    torch.manual_seed(0)
    net = Net()
    x, y = data()
    xt, yt = data(seed=1)
    xo, _ = data(seed=2)
    got = measure(
        net, FeatureLoss(3), batches(x, y), batches(xt, yt), Settings(3, layers=["body"]), batches(xo, y)
    )
    with torch.no_grad():
        pre, pre_t = net.body(x), net.body(xt)  # the hooked module's output (before the ReLU)
        h, ho = net(x)[1].double(), net(xo)[1].double()
    want = nc_metrics(pre, y, None, None, pre_t, yt)
    for key in ["nc1", "nc2_h", "cdnv", "ncc_acc", "test_nc1", "test_ncc_acc"]:
        assert got.record[f"body/{key}"] == pytest.approx(want[key], rel=1e-9), key
    mu = torch.stack([h[y == c].mean(0) for c in range(3)])
    o = ho.mean(0)
    assert got.record["nc5"] == pytest.approx(((mu @ o).abs() / (mu.norm(dim=1) * o.norm())).mean().item())
    assert got.classes["counts"].tolist() == [30, 30, 30] and got.classes["nc4_ncc"].shape == (3,)
    with pytest.raises(ConfigError, match="no module named trunk"):
        measure(net, FeatureLoss(3), batches(x, y), None, Settings(3, layers=["trunk"]))


def test_strict_measurement_refuses_a_missing_class():
    net = Net()
    x, y = data()
    keep = y != 1
    got = measure(net, FeatureLoss(3), batches(x[keep], y[keep]), None, Settings(3)).record
    assert got["classes_empty"] == 1 and got["nc1"] > 0
    with pytest.raises(ValueError, match="no samples"):
        measure(net, FeatureLoss(3), batches(x[keep], y[keep]), None, Settings(3, strict=True))


@pytest.mark.slow
def test_training_with_layers_and_ood_saves_them(tmp_path):
    common = [f"out={tmp_path}", "name=r", "epochs=1", "model.width=16", "model.depth=1"]
    common += ["train.figures=false"]
    assert main(["train", *common, "measure.layers=[backbone.0]", "measure.ood=digits", "--quiet"]) == 0
    run = load(tmp_path / "r")
    record = run.metrics()[-1]
    assert record["backbone.0/nc1"] > 0 and 0 <= record["nc5"] <= 1
    assert run.load_arrays("classes", 1)["nc1_class"].shape == (10,)


def test_ood_of_another_shape_is_one_error_line(tmp_path, capsys):
    common = [f"out={tmp_path}", "epochs=1", "measure.ood=gaussian", "--quiet"]
    assert main(["train", *common]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: measure.ood=gaussian") and err.count("\n") == 1


@pytest.mark.slow
def test_measure_a_timm_model_from_a_weights_file(tmp_path, capsys):
    import timm
    from safetensors.torch import save_file

    if not (load_dataset(resolve(None, ["data=fashion_mnist", "data.per_class=3"]).data, 0).train_x.numel()):
        pytest.skip("fashion-mnist not available")
    model = timm.create_model("test_resnet", num_classes=10, in_chans=1)
    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    out = tmp_path / "m.jsonl"
    args = ["measure", "--model", "timm:test_resnet", "--weights", str(weights), "--split", "train"]
    settings = ["data=fashion_mnist", "data.per_class=3", "train.device=cpu", "--out", str(out)]
    assert main([*args, *settings]) == 0
    record = json.loads(out.read_text())
    assert record["nc1"] > 0 and record["nc2_w"] is not None and record["classes_empty"] == 0
    assert main(["measure", "--model", "timm:resnet18", "data=fashion_mnist"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no weights for timm:resnet18") and err.count("\n") == 1
    assert main(["measure", "--model", "resnet18", "data=fashion_mnist"]) == 2
    assert "timm:NAME" in capsys.readouterr().err
