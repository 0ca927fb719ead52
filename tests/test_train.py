"""`nclab train` end to end on digits: a valid run directory, and bad input that writes nothing."""

import importlib
import json

import pytest
import torch
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nclab.cli import main
from nclab.config import LossConfig, TrainConfig, resolve
from nclab.errors import TrainingDiverged
from nclab.losses import build_loss
from nclab.metrics import nc_metrics
from nclab.models import build_model
from nclab.models.head import additive_bias
from nclab.runs import checkpoint_epochs, load
from nclab.step import TrainStep

train_module = importlib.import_module("nclab.train")  # `nclab.train` the name is the function

SPEC_KEYS = {
    "epoch", "lr", "train_loss", "test_loss", "train_acc", "test_acc", "nc1", "nc2_w", "nc2_w_centered",
    "nc2_h", "nc3", "nc3_duality", "nc4_bias", "nc4_ncc", "equinorm_h", "equinorm_w", "equiangle_h",
    "equiangle_w", "maxangle_h", "maxangle_w", "cdnv", "ncc_acc", "test_ncc_acc", "test_nc1",
}  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    code = main(["train", f"out={out}", "name=r", "epochs=4", "measure.every=2", "model.width=32", "--quiet"])
    assert code == 0
    return out / "r"


def test_run_directory_contract(run_dir):
    run = load(run_dir)
    assert run.status()["state"] == "finished" and run.status()["epochs_done"] == 4
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [2, 4]
    assert set(records[-1]) >= SPEC_KEYS
    assert all(isinstance(records[-1][k], float | int) for k in SPEC_KEYS)
    assert 0.0 <= records[-1]["train_acc"] <= 1.0
    assert run.config().model.width == 32 and run.config().train.epochs == 4
    assert sorted(run.checkpoints()) == [1, 2, 3, 4]
    assert (run_dir / "figures" / "nc.png").stat().st_size > 10_000
    assert list(run_dir.glob("events.out.tfevents.*"))


def test_figures_off_draws_nothing_and_the_run_is_the_same(run_dir, tmp_path, capsys):
    """train.figures=false: no figure file, no TensorBoard image, the same metrics; `nclab plot` later."""
    argv = ["train", f"out={tmp_path}", "name=r", "epochs=4", "measure.every=2", "model.width=32"]
    assert main([*argv, "train.figures=false"]) == 0
    run = load(tmp_path / "r")
    assert f"figures: off; `nclab plot {run.path}` draws them" in capsys.readouterr().out
    assert run.status()["state"] == "finished" and not list(run.path.rglob("*.png"))
    events = EventAccumulator(str(run.path))
    events.Reload()
    assert events.Tags()["images"] == [] and "nc/nc1" in events.Tags()["scalars"]
    assert (run.path / "metrics.jsonl").read_bytes() == (run_dir / "metrics.jsonl").read_bytes()
    assert main(["plot", str(run.path)]) == 0 and (run.path / "figures" / "nc.png").stat().st_size > 10_000


def test_checkpoint_reproduces_logged_metrics(run_dir):
    """The last checkpoint, loaded into a fresh model, gives the logged train accuracy and nc1."""
    run = load(run_dir)
    cfg = run.config()
    from nclab.data import load_dataset

    splits = load_dataset(cfg.data, cfg.seed)
    model = build_model(cfg, splits.input_shape, splits.num_classes)
    model.load_state_dict(load_file(run.checkpoint_path(4)))
    model.eval()
    with torch.no_grad():
        _, h = model(splits.train_x)
    got = nc_metrics(h, splits.train_y, model.head.weight, model.head.bias)
    last = run.metrics()[-1]
    assert got["nc1"] == pytest.approx(last["nc1"], rel=1e-5)
    assert got["train_acc"] == pytest.approx(last["train_acc"])


@pytest.mark.slow
def test_training_collapses_on_digits(tmp_path):
    from nclab.train import train

    cfg = resolve(
        None,
        [
            f"out={tmp_path}",
            "epochs=12",
            "optim.weight_decay=5e-3",
            "optim.step_size=8",
            "train.figures=false",
        ],
        "demo",
    )  # train accuracy 1 from epoch 7 on; NC1 falls to a third of epoch 1's
    records = train(cfg).metrics()
    assert records[-1]["train_acc"] == 1.0 and records[-1]["test_acc"] > 0.95
    assert records[-1]["nc1"] < 0.5 * records[0]["nc1"]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["loss=nope"], ["loss.name", "nope", "ce"]),
        (["optim.lr=abc"], ["optim.lr", "abc"]),
        (["model.nope=1"], ["model.nope", "unknown key", "width"]),
        (["optim=lbfgs", "train.clip_grad_norm=1"], ["clip_grad_norm", "lbfgs"]),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_run_dir(tmp_path, capsys, args, fragments):
    out = tmp_path / "runs"
    assert main(["train", f"out={out}", *args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    for fragment in fragments:
        assert fragment in err
    assert not out.exists()


def test_checkpoint_cadence():
    """Default: about 10 log-spaced epochs, the last always; or every save_every plus the last."""
    assert checkpoint_epochs(5, None) == {1, 2, 3, 4, 5}
    assert sorted(checkpoint_epochs(200, None)) == [1, 2, 3, 6, 11, 19, 34, 62, 111, 200]
    assert len(checkpoint_epochs(800, None)) == 10 and max(checkpoint_epochs(800, None)) == 800
    assert checkpoint_epochs(10, 4) == {4, 8, 10}


@pytest.mark.slow
def test_plot_overlays_runs(run_dir, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(["train", f"out={tmp_path}", "name=other", "epochs=2", "model.width=16", "--quiet"]) == 0
    (run_dir / "figures" / "nc.png").unlink()
    assert main(["plot", str(run_dir), str(other)]) == 0
    figure = run_dir / "figures" / "nc.png"
    path, *caption = capsys.readouterr().out.strip().splitlines()  # the file, then its caption lines
    assert path == str(figure) and any("(nc1): tr(Sigma_W Sigma_B^+) / K" in line for line in caption)
    import matplotlib.image

    pixels = matplotlib.image.imread(figure)
    assert pixels.shape[:2] == (1110, 2040) and pixels.std() > 0.05  # 6.8 x 3.7 in at 300 dpi


def test_plot_of_a_missing_run_is_one_error_line(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a run directory" in err and err.count("\n") == 1


def test_non_finite_loss_stops_cleanly(tmp_path, capsys):
    """lr x 1e5 after epoch 2 makes epoch 3 diverge: exit 3, one error line, epochs 1-2 kept, nothing else."""
    out = tmp_path / "runs"
    args = ["loss=mse", "epochs=4", "optim.step_size=2", "optim.gamma=1e5", "model.width=32"]
    assert main(["train", f"out={out}", "name=r", *args, "--quiet"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: loss became ") and "in epoch 3" in err and err.count("\n") == 1
    run = load(out / "r")
    status = run.status()
    assert status["state"] == "failed" and status["epochs_done"] == 2 and "epoch 3" in status["error"]
    assert [r["epoch"] for r in run.metrics()] == [1, 2]
    assert sorted(run.checkpoints()) == [1, 2]
    assert all(torch.isfinite(t).all() for t in run.load_checkpoint(2).values())
    assert not list((out / "r").glob(".*.tmp"))


class TinyClassifier(torch.nn.Module):
    """(logits, features) like a Classifier: a linear head on the (scaled) input."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)
        self.scale = scale

    def forward(self, x):
        return self.linear(x * self.scale), x


def test_divergence_is_caught_within_the_epoch(monkeypatch):
    """With a check every step, the epoch stops at the first non-finite loss instead of running on."""
    monkeypatch.setattr(train_module, "CHECK_EVERY", 1)
    model = TinyClassifier()
    seen = []

    def batches():
        for i in range(10):
            seen.append(i)
            yield torch.full((4, 3), float("nan") if i == 2 else 1.0), torch.zeros(4, dtype=torch.long)

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingDiverged, match="epoch 5"):
        step = TrainStep(model, build_loss(LossConfig(), 2, 3), optimizer, TrainConfig())
        train_module._train_epoch(step, batches(), 5)
    assert seen == [0, 1, 2]


def test_gradient_clipping_bounds_the_step():
    torch.manual_seed(0)
    model = TinyClassifier(scale=100.0)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    data = [(torch.randn(8, 3), torch.randint(0, 2, (8,)))]
    step = TrainStep(model, build_loss(LossConfig(), 2, 3), optimizer, TrainConfig(clip_grad_norm=1e-3))
    train_module._train_epoch(step, data, 1)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm().item() == pytest.approx(1e-3, rel=1e-3)


@pytest.mark.slow
def test_lbfgs_full_batch_run(tmp_path):
    from nclab.train import train

    cfg = resolve(None, [
        f"out={tmp_path}", "optim=lbfgs", "optim.lr=0.5", "optim.schedule=none", "optim.max_iter=5",
        "train.batch_size=4096", "epochs=3", "model.width=32", "model.depth=1", "model.batch_norm=false",
        "train.figures=false",
    ])  # fmt: skip
    records = train(cfg).metrics()
    losses = [r["step_loss"] for r in records]
    assert losses[2] < losses[1] < losses[0] and records[-1]["train_acc"] > 0.9


@pytest.mark.slow
@pytest.mark.parametrize("head", ["linear", "none"])
@pytest.mark.parametrize("optim", ["sgd", "lbfgs"])
def test_standalone_center_run_has_no_classifier_metrics(tmp_path, head, optim):
    from nclab.train import train

    overrides = [
        "loss=standalone_center",
        "epochs=2",
        "model.width=32",
        f"head.kind={head}",
        "train.figures=false",
    ]
    overrides.append(f"optim={optim}")
    run = train(resolve(None, [f"out={tmp_path}", *overrides]))
    last = run.metrics()[-1]
    assert last["train_acc"] == last["center_acc"] and last["test_acc"] == last["test_center_acc"]
    assert last["nc2_w"] is None and last["nc4_bias"] is None and last["nc1"] is not None
    assert load_file(run.checkpoint_path(2))["loss.centers"].shape == (10, 32)


def test_bias_sign_minus_gives_w_h_minus_b():
    cfg = resolve(None, ["head.bias_sign=-1", "model.width=8", "model.depth=1"])
    model = build_model(cfg, (64,), 10).eval()
    x = torch.randn(5, 64)
    logits, h = model(x)
    b = model.head.bias
    assert torch.allclose(logits, h @ model.head.weight.T - b, atol=1e-6)
    assert torch.equal(additive_bias(model.head), -b)


def test_default_checkpoints_of_a_200_epoch_resnet18_fit_in_a_gigabyte():
    """The disk use of the default policy, from tensor sizes on the meta device (nothing trained or written):
    10 analysis checkpoints (model) + the resume state (model + SGD momentum) and its temp copy."""
    cfg = resolve(None, ["model=resnet18", "data=cifar10"])
    assert cfg.train.epochs == 200 and cfg.train.save_every is None
    with torch.device("meta"):
        model = build_model(cfg, (3, 32, 32), 10)
        loss_fn = build_loss(cfg.loss, 10, model.feature_dim)
    plan = train_module.disk_plan(cfg, model, loss_fn)
    weights = sum(t.nbytes for t in model.state_dict().values())
    trainable = sum(p.nbytes for p in model.parameters())
    assert plan.epochs == [1, 2, 3, 6, 11, 19, 34, 62, 111, 200]
    assert plan.checkpoint_bytes == weights and 44e6 < weights < 46e6  # 11.2 M float32 parameters + BN stats
    assert plan.state_bytes == weights + trainable  # one momentum buffer per parameter
    assert plan.total == 10 * weights + 2 * plan.state_bytes and plan.total < 0.65e9
    assert 200 * weights > 8.9e9  # the old policy: a checkpoint every epoch
    assert "10 analysis" in plan.describe() and "GB" in plan.describe()
