"""nclab.files, the one reader and writer: unreadable files are one ReadError line (exit 2), failing writes
one WriteError line (exit 1) with no temp file left, in every command that writes (plot, measure, visualize,
the end-of-run figures, TensorBoard's writer thread); a closed stdout ends quietly; a second writer is
refused."""

import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest
from matplotlib.figure import Figure

import nclab.files as files_module
from nclab.cli import main
from nclab.errors import ReadError
from nclab.files import read_yaml
from nclab.runs import Run, load

SRC = str(Path(__file__).parents[1] / "src")
TINY = ["epochs=2", "model.width=16", "model.depth=1", "train.batch_size=256", "measure.score_samples=50"]
CODES = [errno.ENOSPC, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EDQUOT]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (None, "not found"),
        ("dir", "is a directory"),
        (b"\x7fELF\x02\x01\x00\x00seed: 1\n", "binary"),
        ("seed: 1\n".encode("utf-16"), "UTF-16"),
        ("name: na\u00efve\n".encode("latin-1"), "not UTF-8 (byte 0xef"),
        ("name: na\u00efve\n".encode("cp1252"), "not UTF-8"),
        (b"{[1, 2]: 3}\n", "is not a name"),
        (b"{{a: 1}: 3}\n", "is not a name"),
        (b"3.5: x\n", "is not a name"),
        (b"true: x\n", "is not a name"),
        (b"a: 1\na: 2\n", "appears twice"),
        (b"seed: " + b"[" * 3000 + b"]" * 3000, "nested deeper"),
        (b"a: " + b"{b: " * 40 + b"1" + b"}" * 40 + b"\n", "nested deeper"),
        (b"seed: " + b"7" * 6000 + b"\n", "beyond 64 bits"),
        (b"seed: 9223372036854775808\n", "beyond 64 bits"),
        (b"seed: -9223372036854775809\n", "beyond 64 bits"),
        (b"- 1\n", "mapping"),
        (b"a: [1,\n", "not valid YAML"),
    ],
)
def test_unreadable_files_are_one_read_error(tmp_path, data, fragment):
    path = tmp_path / "c.yaml"
    if data == "dir":
        path.mkdir()
    elif data is not None:
        path.write_bytes(data)
    with pytest.raises(ReadError, match=r"^config file .*c\.yaml") as info:
        read_yaml(path)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_permission_error_is_one_read_error(tmp_path, monkeypatch):
    (tmp_path / "c.yaml").write_text("seed: 1\n")

    def refuse(self):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ReadError, match="cannot be read \\(permission denied\\)"):
        read_yaml(tmp_path / "c.yaml")


def test_the_largest_64_bit_integers_are_read(tmp_path):
    (tmp_path / "c.yaml").write_text("a: 9223372036854775807\nb: -9223372036854775808\n")
    assert read_yaml(tmp_path / "c.yaml") == {"a": 2**63 - 1, "b": -(2**63)}


def refusing_fsync(monkeypatch, code: int) -> None:
    """Every fsync of nclab.files fails with `code` (after the temp file is written: it must be removed)."""

    def fsync(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files_module, "os", types.SimpleNamespace(**{**vars(os), "fsync": fsync}))


def one_error_line(err: str, *fragments: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write "), err
    assert all(f in lines[0] for f in fragments), err
    assert "Traceback" not in err and "Exception in thread" not in err


@pytest.mark.parametrize(
    "code", [CODES[0], *(pytest.param(c, marks=pytest.mark.slow) for c in CODES[1:])]
)  # fast: a full disk; the same path names each errno
@pytest.mark.parametrize("command", ["plot", "measure", "visualize"])
def test_a_failing_write_is_one_line_exit_1_and_no_temp_file(
    tmp_path, tiny_runs, monkeypatch, capsys, code, command
):
    run = Path(shutil.copytree(tiny_runs[0], tmp_path / "copy"))
    argv = {
        "plot": ["plot", str(run)],
        "measure": ["measure", str(run)],
        "visualize": ["visualize", str(run), "--method", "pca"],
    }
    refusing_fsync(monkeypatch, code)
    assert main(argv[command]) == 1
    one_error_line(capsys.readouterr().err, os.strerror(code))
    assert not list(run.rglob(".*.tmp"))
    assert not Run(run).locked()


@pytest.mark.slow  # trains and resumes a run
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EFBIG, errno.EACCES])
def test_end_of_run_figures_failing_then_resumed(tmp_path, monkeypatch, capsys, code):
    """A figure that cannot be written after the last epoch: one line, exit 1, status failed after 2 of 2
    epochs, no temp file; `--resume` then does only the end-of-run work and the run is finished."""

    def savefig(self, *args, **kwargs):
        Path(args[0]).write_bytes(b"half a png")
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(Figure, "savefig", savefig)
    assert main(["train", f"out={tmp_path}", "name=r", *TINY, "--quiet"]) == 1
    one_error_line(capsys.readouterr().err, "figures/nc.png", os.strerror(code))
    run = load(tmp_path / "r")
    assert run.status()["state"] == "failed" and run.status()["epochs_done"] == 2
    assert not list(run.path.rglob(".*.tmp")) and not (run.path / "figures" / "nc.png").exists()
    metrics = (run.path / "metrics.jsonl").read_bytes()
    monkeypatch.undo()
    assert main(["train", "--resume", str(run.path), "--quiet"]) == 0
    assert run.status()["state"] == "finished" and (run.path / "figures" / "nc.png").stat().st_size > 1000
    assert (run.path / "metrics.jsonl").read_bytes() == metrics  # no epoch trained again


def test_tensorboard_writer_thread_failure_is_one_line(tmp_path, monkeypatch, capsys):
    """TensorBoard writes its events in a thread: its ENOSPC comes back to the run as one WriteError line,
    no thread traceback; the run resumes to finished once the disk has space."""
    from tensorboard.summary.writer.record_writer import RecordWriter

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(RecordWriter, "write", write)
    assert main(["train", f"out={tmp_path}", "name=r", *TINY, "--quiet"]) == 1
    one_error_line(capsys.readouterr().err, str(tmp_path / "r"), "No space left")
    assert load(tmp_path / "r").status()["state"] == "failed"
    monkeypatch.undo()
    assert main(["train", "--resume", str(tmp_path / "r"), "--quiet"]) == 0
    assert load(tmp_path / "r").status()["state"] == "finished"


def _nclab(*args: str, limit: int | None = None, **kwargs) -> subprocess.Popen:
    def preexec() -> None:
        if limit is not None:  # `ulimit -f`: writes beyond it fail with EFBIG (SIGXFSZ ignored, as shells do)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = os.environ | {"PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "nclab", *args], env=env, preexec_fn=preexec, **kwargs)


@pytest.mark.slow  # a CLI process
def test_file_size_limit_is_one_line(tmp_path, tiny_runs):
    """A real `ulimit -f` (no patching): the figure's write fails with EFBIG."""
    proc = _nclab(
        "plot", str(tiny_runs[0]), "--out", str(tmp_path), limit=20_000, stderr=subprocess.PIPE, text=True
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    one_error_line(err, "File too large", "ulimit -f")
    assert not list(tmp_path.iterdir())


def test_a_closed_stdout_ends_quietly(tmp_path):
    piped = _nclab("presets", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    piped.stdout.close()  # `| head` that has already exited
    _, err = piped.communicate(timeout=300)
    assert (piped.returncode, err) == (0, b"")
    with open("/dev/full", "w") as full:
        proc = _nclab("options", stdout=full, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=300)
    assert (proc.returncode, err) == (1, b"")


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, (sys.argv[2] if len(sys.argv) > 2 else str(os.getpid())).encode())
print("locked", flush=True)
time.sleep(120)
"""


def test_second_writers_are_refused_and_a_dead_holder_is_not_running(tmp_path, tiny_runs, capsys):
    """measure and visualize write into the run: refused while a live process holds its lock, like a second
    train. A lock held by a leftover child while the pid it names is dead shows as killed, never running."""
    run = Run(shutil.copytree(tiny_runs[0], tmp_path / "copy"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run.lock_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        for argv in (
            ["measure", str(run.path)],
            ["visualize", str(run.path)],
            ["train", "--resume", str(run.path)],
        ):
            assert main(argv) == 1
            err = capsys.readouterr().err
            assert err.startswith("error: ") and f"process {holder.pid}" in err and err.count("\n") == 1
        run.set_status("running", epochs_done=2)
        assert run.state_name() == "running"
        run.lock_path.write_text("999999999\n")  # the holder names a pid that no longer exists
        assert run.state_name() == "killed"
    finally:
        holder.kill()
        holder.wait()
