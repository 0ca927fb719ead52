"""Kill and resume (train.resume, runs.Run state): a run SIGKILLed at any point, or stopped by SIGTERM/SIGINT,
then resumed with `nclab train --resume`, ends with the files and numbers of an uninterrupted run (CPU)."""

import os
import signal
import time
from pathlib import Path

import pytest
import torch

from nclab.cli import main
from nclab.runs import load
from tests.warm import Child, Warm

# trainings in subprocesses, killed and resumed; one xdist worker shares the reference run and warm server
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("resume")]

HARNESS = Path(__file__).with_name("kill_harness.py")
TINY = ["epochs=4", "model.width=16", "model.depth=1", "train.batch_size=256", "measure.score_samples=50"]


@pytest.fixture(scope="module")
def warm():
    """The harness's processes are forked from one that imported the training code, what a run loads on its
    way (torch._dynamo with the optimizer, sklearn with digits) and the figure stack (tests/warm.py): each
    costs its epochs, not ~6 s of imports."""
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    training = ["nclab.cli", "nclab.train", "nclab.report.plots"]
    server = Warm([*training, "sklearn.datasets", "torch._dynamo", "torch.utils.tensorboard"], env)
    yield server
    server.close()


def harness(warm: Warm, point: str, epoch: int, out: Path, name: str) -> Child:
    """`python tests/kill_harness.py POINT EPOCH ARGS` training run `name` in `out`."""
    args = [f"out={out}", f"name={name}", *TINY, "--quiet"]
    return warm.start([str(HARNESS), point, str(epoch), *args], out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, on one thread as the subprocesses (tests/conftest.py): CPU results are identical
    for the same seed and thread count."""
    out = tmp_path_factory.mktemp("ref")
    assert main(["train", f"out={out}", "name=ref", *TINY, "--quiet"]) == 0
    return out / "ref"


def assert_same_run(run_dir: Path, ref_dir: Path) -> None:
    """metrics.jsonl byte for byte, every checkpoint and score file's tensors, the status, the figure."""
    assert (run_dir / "metrics.jsonl").read_bytes() == (ref_dir / "metrics.jsonl").read_bytes()
    run, ref = load(run_dir), load(ref_dir)
    for kind in ("checkpoints", "scores"):
        assert run.array_epochs(kind) == ref.array_epochs(kind)
        for epoch in ref.array_epochs(kind):
            a, b = run.load_arrays(kind, epoch), ref.load_arrays(kind, epoch)
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert {k: run.status()[k] for k in ("state", "epochs_done", "epochs")} == {
        "state": "finished", "epochs_done": 4, "epochs": 4
    }  # fmt: skip
    assert not list(run_dir.rglob(".*.tmp"))
    assert (run_dir / "figures" / "nc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(run_dir.glob("events.out.tfevents.*"))


@pytest.mark.parametrize(
    ("point", "epoch"),
    [
        ("steps", 3), ("measure", 2), ("metrics", 3), ("before_state", 2), ("checkpoint", 3), ("state", 4),
        ("plot", 4), ("figures", 4), ("finished", 4),
    ],
)  # fmt: skip
@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path, warm, reference, capsys, point, epoch):
    proc = harness(warm, point, epoch, tmp_path, "k")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    run = load(tmp_path / "k")
    assert run.state_name() == "killed"  # status running, lock free
    assert run.lock_path.read_text().strip() == str(proc.pid)  # the dead holder's lock is taken over
    assert main(["train", "--resume", str(tmp_path / "k"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert_same_run(tmp_path / "k", reference)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
@pytest.mark.slow
def test_signal_saves_state_then_resume_equals_uninterrupted(tmp_path, warm, reference, capsys, sig, code):
    """SIGTERM/SIGINT stop the run between writes (status interrupted, exit 143/130); while it runs, a second
    writer is refused with the holder's pid."""
    proc = harness(warm, "slow", 0, tmp_path, "s")
    status = tmp_path / "s" / "status.json"
    deadline = time.time() + 240
    while time.time() < deadline and not (status.exists() and '"epochs_done": 1' in status.read_text()):
        time.sleep(0.05)
    assert main(["train", "--resume", str(tmp_path / "s"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"process {proc.pid}" in err and err.count("\n") == 1
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert err.startswith("error: interrupted by ") and "--resume" in err and err.count("\n") == 1
    run = load(tmp_path / "s")
    assert run.status()["state"] == "interrupted" and run.state_name() == "interrupted"
    assert run.status()["epochs_done"] == 1  # stopped while epoch 2 waited to start (kill_harness.py)
    assert main(["train", "--resume", str(tmp_path / "s"), "--quiet"]) == 0
    assert_same_run(tmp_path / "s", reference)


def test_extending_a_finished_run_equals_training_longer(tmp_path):
    """`--resume RUN epochs=6` after 4 epochs gives the metrics and weights of a 6-epoch run."""
    base = [f"out={tmp_path}", "model.width=16", "model.depth=1", "train.batch_size=256", "optim.step_size=3"]
    base.append("train.figures=false")
    assert main(["train", *base, "name=short", "epochs=4", "--quiet"]) == 0
    assert main(["train", *base, "name=long", "epochs=6", "--quiet"]) == 0
    assert main(["train", "--resume", str(tmp_path / "short"), "epochs=6", "--quiet"]) == 0
    short, long = load(tmp_path / "short"), load(tmp_path / "long")
    assert short.config().train.epochs == 6 and short.status()["epochs_done"] == 6
    assert short.metrics() == long.metrics()
    a, b = short.load_checkpoint(6), long.load_checkpoint(6)
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_resume_refuses_overrides_and_finished_runs(reference, capsys):
    for args, fragment in [
        (["optim.lr=0.1"], "only epochs=N"),
        (["--preset", "demo"], "only epochs=N"),
        (["epochs=2.5"], "whole number"),
        ([], "nothing to resume"),
        (["epochs=3"], "nothing to resume"),
    ]:
        assert main(["train", "--resume", str(reference), *args, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and fragment in err and err.count("\n") == 1


def test_disk_full_fails_cleanly_and_the_run_resumes(tmp_path, reference, monkeypatch, capsys):
    """ENOSPC while writing the resume state of epoch 3: one error line, exit 1,
    status failed after 2 epochs, the state of epoch 2 intact; after freeing space --resume completes it."""
    from safetensors import SafetensorError

    import nclab.files as files_module
    from nclab.files import load_tensors
    from nclab.runs import Run

    full = {"on": False}
    save_file = files_module.save_file

    def filling_save_file(tensors, path, metadata=None):
        if full["on"]:  # the disk fills halfway through the file
            Path(path).write_bytes(b"half a state")
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return save_file(tensors, path, metadata=metadata)

    save_state = Run.save_state

    def filling(self, parts, epoch, cfg):
        full["on"] = epoch == 3
        return save_state(self, parts, epoch, cfg)

    monkeypatch.setattr(files_module, "save_file", filling_save_file)
    monkeypatch.setattr(Run, "save_state", filling)
    assert main(["train", f"out={tmp_path}", "name=f", *TINY, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write ") and "state.safetensors: No space left" in err
    assert "free disk space" in err and err.count("\n") == 1
    monkeypatch.undo()
    run = load(tmp_path / "f")
    assert run.status()["state"] == "failed" and run.status()["epochs_done"] == 2
    assert load_tensors(run.state_path)[1]["epoch"] == "2"
    assert main(["train", "--resume", str(tmp_path / "f"), "--quiet"]) == 0
    assert_same_run(tmp_path / "f", reference)
