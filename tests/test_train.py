"""`nclab train` end to end on digits: a valid run directory, and bad input that writes nothing."""

import json

import pytest
import torch
from safetensors.torch import load_file

from nclab.cli import main
from nclab.config import resolve
from nclab.metrics import nc_metrics
from nclab.models import build_model
from nclab.runs import checkpoint_epochs, load

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


def test_training_collapses_on_digits(tmp_path):
    from nclab.train import train

    cfg = resolve(
        None, [f"out={tmp_path}", "epochs=30", "optim.weight_decay=5e-3", "optim.step_size=20"], "demo"
    )
    records = train(cfg).metrics()
    assert records[-1]["train_acc"] == 1.0 and records[-1]["test_acc"] > 0.95
    assert records[-1]["nc1"] < 0.5 * records[0]["nc1"]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["loss=nope"], ["loss.name", "nope", "ce"]),
        (["optim.lr=abc"], ["optim.lr", "abc"]),
        (["model.nope=1"], ["model.nope", "unknown key", "width"]),
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
    assert checkpoint_epochs(5, None) == {1, 2, 3, 4, 5}
    long = checkpoint_epochs(800, None)
    assert len(long) == 100 and min(long) == 8 and max(long) == 800
    assert checkpoint_epochs(10, 4) == {4, 8, 10}


def test_plot_overlays_runs(run_dir, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(["train", f"out={tmp_path}", "name=other", "epochs=2", "model.width=16", "--quiet"]) == 0
    (run_dir / "figures" / "nc.png").unlink()
    assert main(["plot", str(run_dir), str(other)]) == 0
    figure = run_dir / "figures" / "nc.png"
    assert capsys.readouterr().out.strip() == str(figure)
    import matplotlib.image

    pixels = matplotlib.image.imread(figure)
    assert pixels.shape[:2] == (700, 1300) and pixels.std() > 0.05


def test_plot_of_a_missing_run_is_one_error_line(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a run directory" in err and err.count("\n") == 1
