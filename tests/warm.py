"""A warm interpreter for tests that start many short Python processes: one server process imports the heavy
modules once, then forks a child per command, so a command costs its own work, not a ~3 s import of torch.

    warm = Warm(["torch"], env)                          # the server imports torch, then waits
    child = warm.start(["-m", "nclab", "plot", RUN], tmp_path)   # as `python -m nclab plot RUN`
    out, err = child.communicate(timeout=60); child.returncode  # -9 when SIGKILLed, as subprocess

A child is what `python -m MODULE ARGS` or `python SCRIPT ARGS` would be in the server's environment (argv,
sys.path[0], working directory, stdout/stderr of its own, exit status) except that the preloaded modules are
imported already. The server is single-threaded (tests/conftest.py sets OMP_NUM_THREADS=1 before torch
loads; pyarrow's allocator, which sklearn.datasets loads through pandas, is told to start no thread), so
forking it is safe; it checks that before it serves, and runs one child at a time. Run as a script, this file
is the server."""

from __future__ import annotations

import atexit
import importlib
import json
import os
import runpy
import select
import signal
import subprocess
import sys
import traceback
from pathlib import Path

__all__ = ["Child", "Warm"]


class Child:
    """One forked command: `pid`, then `returncode` once `wait` or `communicate` has seen it end."""

    def __init__(self, warm: Warm, pid: int, out: Path, err: Path) -> None:
        self.warm, self.pid, self.out, self.err = warm, pid, out, err
        self.returncode: int | None = None

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        if self.returncode is None:
            self.returncode = int(self.warm.read_line(timeout))
            self.warm.child = None
        return self.returncode

    def communicate(self, timeout: float) -> tuple[str, str]:
        """Wait for the end; (stdout, stderr) as text. A command that runs past `timeout` is SIGKILLed."""
        try:
            self.wait(timeout)
        except TimeoutError:
            self.send_signal(signal.SIGKILL)
            self.wait(10)
            raise
        return self.out.read_text(), self.err.read_text()


class Warm:
    """The server: started with `env` (PYTHONPATH, OMP_NUM_THREADS as the children need), it imports
    `modules` and then forks one child per `start`."""

    def __init__(self, modules: list[str], env: dict[str, str]) -> None:
        self.env = env
        single = {"JE_ARROW_MALLOC_CONF": "background_thread:false"}  # the server's own, not the children's
        self.server = subprocess.Popen(
            [sys.executable, __file__, *modules], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=env | single, bufsize=0,  # unbuffered: `select` sees every line the server writes
        )  # fmt: skip
        self.child: Child | None = None
        self.count = 0

    def start(self, argv: list[str], folder: Path, env: dict[str, str] | None = None) -> Child:
        """A child running `python *argv` in `folder` (its stdout and stderr files go there too), in the
        server's environment updated by `env` (variables read at run time: PYTHONPATH is the server's)."""
        assert self.child is None, "one child at a time"
        self.count += 1
        out, err = (folder / f".warm{self.count}.{name}" for name in ("out", "err"))
        request = {"argv": argv, "cwd": str(folder), "env": self.env | (env or {}), "out": str(out)}
        self.server.stdin.write(json.dumps(request | {"err": str(err)}).encode() + b"\n")
        self.child = Child(self, int(self.read_line(300)), out, err)  # the first waits for the imports
        return self.child

    def read_line(self, timeout: float) -> str:
        if not select.select([self.server.stdout], [], [], timeout)[0]:
            raise TimeoutError(f"the warm interpreter gave no answer within {timeout} s")
        line = self.server.stdout.readline().decode()
        if not line:
            raise RuntimeError(f"the warm interpreter ended (exit {self.server.wait()})")
        return line

    def close(self) -> None:
        """End the server (and a child a failed test left running)."""
        if self.child is not None:
            self.child.send_signal(signal.SIGKILL)
            self.child.wait(30)
        self.server.kill()  # it holds nothing to save; a clean interpreter exit takes seconds
        self.server.wait(30)


def _serve(modules: list[str]) -> None:
    sys.path[0] = os.getcwd()  # not tests/ (its folders data, models, ... would shadow modules of that name)
    for name in modules:
        importlib.import_module(name)
    tasks = Path("/proc/self/task")
    if tasks.is_dir() and len(list(tasks.iterdir())) > 1:
        threads = [(task / "comm").read_text().strip() for task in tasks.iterdir()]
        sys.exit(f"warm.py: importing {modules} started threads {threads}; forking would be unsafe")
    for line in sys.stdin.buffer:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(**request)
        print(pid, flush=True)
        print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)


def _child(argv: list[str], cwd: str, env: dict[str, str], out: str, err: str) -> None:
    """Become `python *argv`: never returns."""
    code = 1
    try:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        write = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, out, write), (2, err, write)):
            opened = os.open(path, flags)
            os.dup2(opened, fd)
            os.close(opened)
        if argv[0] == "-m":  # sys.path[0] is the working directory, as with `python -m`
            sys.argv, sys.path[0] = argv[1:], cwd
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:  # sys.path[0] is the script's folder
            sys.argv, sys.path[0] = argv, str(Path(argv[0]).resolve().parent)
            runpy.run_path(argv[0], run_name="__main__")
        code = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


if __name__ == "__main__":
    _serve(sys.argv[1:])
