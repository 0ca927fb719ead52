"""runs.Run: atomic checksummed files, torn metrics lines, the lock, write failures, rewinding for resume."""

import errno
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError

import nclab.files as files_module
from nclab.config import resolve
from nclab.errors import CorruptFile, RunLocked, WriteError
from nclab.files import load_tensors, save_tensors
from nclab.runs import Run


@pytest.fixture
def run(tmp_path):
    return Run.create(resolve(None, [f"out={tmp_path}", "name=r", "epochs=5"]))


def test_checksummed_file_round_trip_and_damage(tmp_path):
    path = tmp_path / "x.safetensors"
    tensors = {"w": torch.randn(64, 8), "n": torch.tensor(3), "b": torch.ones(4, dtype=torch.bfloat16)}
    save_tensors(path, tensors, {"epoch": "7"})
    loaded, meta = load_tensors(path)
    assert meta["epoch"] == "7" and all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    data = path.read_bytes()
    path.write_bytes(data[:-100])  # truncated
    with pytest.raises(CorruptFile, match="corrupt or truncated"):
        load_tensors(path)
    flipped = bytearray(data)
    flipped[-5] ^= 0x40  # one bit of a tensor
    path.write_bytes(bytes(flipped))
    with pytest.raises(CorruptFile, match="checksum mismatch"):
        load_tensors(path)
    from safetensors.torch import save_file

    save_file(tensors, path)  # a valid file without nclab's checksum
    with pytest.raises(CorruptFile, match="no checksum"):
        load_tensors(path)


def test_torn_last_metrics_line_is_ignored_with_a_warning(run, capsys):
    run.append_metrics({"epoch": 1, "nc1": 0.5})
    run.append_metrics({"epoch": 2, "nc1": float("nan")})
    with open(run.path / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "nc')
    assert run.metrics() == [{"epoch": 1, "nc1": 0.5}, {"epoch": 2, "nc1": None}]
    assert run.metrics() == run.metrics()
    err = capsys.readouterr().err
    assert err.count("warning: ") == 1 and "torn last line" in err  # once per Run
    run.rewind(2)  # resume drops it for good
    assert (run.path / "metrics.jsonl").read_text().endswith('"nc1": null}\n')


def test_rewind_drops_what_came_after_the_resume_state(run):
    for epoch in (1, 2, 3):
        run.append_metrics({"epoch": epoch})
        run.save_arrays("checkpoints", epoch, {"w": torch.zeros(2)})
        run.save_arrays("scores", epoch, {"s": torch.zeros(2)})
    (run.path / "checkpoints" / ".epoch_0004.safetensors.tmp").write_bytes(b"half")
    run.rewind(2)
    assert [r["epoch"] for r in run.metrics()] == [1, 2]
    assert run.array_epochs("checkpoints") == [1, 2] and run.array_epochs("scores") == [1, 2]
    assert not list(run.path.rglob("*.tmp"))


def test_lock_refuses_a_live_holder_and_takes_over_a_dead_ones(run):
    run.lock_path.write_text("999999\n")  # a lock file left by a dead process: no flock held
    with run.lock():
        assert run.lock_path.read_text() == f"{os.getpid()}\n"
        assert run.locked()
        with pytest.raises(RunLocked, match=f"process {os.getpid()}"), Run(run.path).lock():
            pass
    assert not run.locked()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run.lock_path)], stdout=subprocess.PIPE, text=True
    )  # another process
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLocked, match=f"process {holder.pid} "), run.lock():
            pass
        assert run.state_name() == "running"  # its status says running and the lock is held
    finally:
        holder.kill()
        holder.wait()
    assert run.state_name() == "killed"  # running, but nobody holds the lock


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, str(os.getpid()).encode())
print("locked", flush=True)
time.sleep(120)
"""


def failing_save_file(code: int):
    """safetensors' save_file running into `code` halfway (its error text as under a full disk)."""

    def save_file(tensors, path, metadata=None):
        Path(path).write_bytes(b"half a file")
        raise SafetensorError(f"Error while serializing: I/O error: {os.strerror(code)} (os error {code})")

    return save_file


@pytest.mark.parametrize(("code", "hint"), [(errno.ENOSPC, "free disk space"), (errno.EACCES, "permissions")])
def test_a_failed_write_keeps_the_previous_file(run, monkeypatch, code, hint):
    save_tensors(run.state_path, {"w": torch.ones(3)}, {"epoch": "1"})

    def refuse(fd, data):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files_module, "save_file", failing_save_file(code))
    monkeypatch.setattr(files_module, "os", types.SimpleNamespace(**{**vars(os), "write": refuse}))
    with pytest.raises(WriteError, match=f"cannot write {run.state_path}: {os.strerror(code)}; .*{hint}"):
        save_tensors(run.state_path, {"w": torch.zeros(3)}, {"epoch": "2"})
    with pytest.raises(WriteError, match=r"metrics\.jsonl"):
        run.append_metrics({"epoch": 2})
    monkeypatch.undo()
    tensors, meta = load_tensors(run.state_path)
    assert meta["epoch"] == "1" and torch.equal(tensors["w"], torch.ones(3))
    assert not list(run.path.rglob("*.tmp"))


def test_create_refuses_an_existing_directory(run):
    from nclab.errors import ConfigError

    with pytest.raises(ConfigError, match="--resume"):
        Run.create(run.config())


def test_a_config_from_before_components_owned_their_options_still_loads(run):
    """Older run dirs hold every loss's and optimizer's options in one section, and data.gaussian.*: the
    chosen component's keys are read (the sub-section lifted into data), the unused others dropped."""
    old = (
        "data: {name: gaussian, gaussian: {classes: 3, per_class: 7, dim: 4}, multilabel: {single: 5}}\n"
        "loss: {name: focal, scale: 1.0, gamma: 2.0, smoothing: 0.05, center_lr: null}\n"
        "optim: {name: adam, lr: 0.01, momentum: 0.9, nesterov: false, betas: [0.8, 0.9], history_size: 10}\n"
        "model: {name: vit, width: 64, depth: null, batch_norm: true, stem: cifar, head_dim: null}\n"
    )
    (run.path / "config.yaml").write_text(old)
    cfg = run.config()
    assert (cfg.data.classes, cfg.data.train_per_class, cfg.data.dim) == (3, 7, 4)
    assert cfg.loss.gamma == 2.0 and not hasattr(cfg.loss, "scale")
    assert cfg.optim.betas == (0.8, 0.9) and cfg.optim.lr == 0.01 and not hasattr(cfg.optim, "momentum")
    # models: null meant "the model's own default", which its options class now holds
    assert (cfg.model.width, cfg.model.depth, cfg.model.head_dim) == (64, 6, None)
    assert not hasattr(cfg.model, "stem")
