"""A warm interpreter for tests that start many short Python processes: one server process imports the heavy
modules once, then forks a child per command, so a command costs its own work, not seconds of imports.

    warm = Warm(["torch"], env)                          # the server imports torch, then serves
    child = warm.start(["-m", "nclab", "plot", RUN], tmp_path)   # as `python -m nclab plot RUN`
    out, err = child.communicate(timeout=60); child.returncode  # -9 when SIGKILLed, as subprocess
    [*torchrun, *warm.client("-m", "nclab", "train", ...)]      # each rank a forked child, via a thin client

A child is what `python -m MODULE ARGS` or `python SCRIPT ARGS` would be (argv, sys.path[0], environment and
working directory of the caller, its stdin/stdout/stderr, exit status) except that the preloaded modules are
imported already. The client (this file run with --connect) is a stdlib-only Python that hands its argv,
environment, working directory and standard streams to the server, passes SIGTERM/SIGINT on to its child and
exits as the child did, for launchers such as torchrun that start the processes themselves.

Forking is safe because the server is single-threaded (tests/conftest.py sets OMP_NUM_THREADS=1 before torch
loads; pyarrow's allocator, which sklearn.datasets loads through pandas, is told to start no thread); it
checks that before it serves. Run with --serve, this file is the server."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import runpy
import select
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

__all__ = ["Child", "Warm"]


class Child:
    """One forked command: `pid`, then `returncode` once `wait` or `communicate` has seen it end."""

    def __init__(self, conn: socket.socket, out: Path, err: Path) -> None:
        self.conn, self.out, self.err = conn, out, err
        self.lines = conn.makefile("rb")
        self.pid = int(self._line(300))  # the first command waits for the server's imports
        self.returncode: int | None = None

    def _line(self, timeout: float) -> str:
        self.conn.settimeout(timeout)
        line = self.lines.readline()
        if not line:
            raise RuntimeError("the warm interpreter closed the connection")
        return line.decode()

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        if self.returncode is None:
            self.returncode = int(self._line(timeout))
            self.conn.close()
        return self.returncode

    def communicate(self, timeout: float) -> tuple[str, str]:
        """Wait for the end; (stdout, stderr) as text. A command that runs past `timeout` is SIGKILLed."""
        try:
            self.wait(timeout)
        except TimeoutError:
            self.send_signal(signal.SIGKILL)
            raise
        return self.out.read_text(), self.err.read_text()


class Warm:
    """The server: started with `env` (PYTHONPATH, OMP_NUM_THREADS as the children need), it imports
    `modules` and then forks a child per request, several at once."""

    def __init__(self, modules: list[str], env: dict[str, str]) -> None:
        self.env = env
        self.address = str(Path(tempfile.mkdtemp(prefix="warm")) / "socket")  # AF_UNIX paths are short
        single = {"JE_ARROW_MALLOC_CONF": "background_thread:false"}  # the server's own, not the children's
        with socket.socket(socket.AF_UNIX) as listener:  # listening before the server's imports
            listener.bind(self.address)
            listener.listen(64)
            command = [sys.executable, __file__, "--serve", str(listener.fileno()), *modules]
            self.server = subprocess.Popen(command, env=env | single, pass_fds=[listener.fileno()])
        self.children: list[Child] = []

    def start(self, argv: list[str], folder: Path, env: dict[str, str] | None = None) -> Child:
        """A child running `python *argv` in `folder` (its stdout and stderr files go there too), in the
        server's environment updated by `env` (variables read at run time: PYTHONPATH is the server's)."""
        n = len(self.children)
        out, err = folder / f".warm{n}.out", folder / f".warm{n}.err"
        with open(os.devnull) as stdin, out.open("w") as stdout, err.open("w") as stderr:
            request = {"argv": argv, "cwd": str(folder), "env": self.env | (env or {})}
            conn = _request(self.address, request, [stdin.fileno(), stdout.fileno(), stderr.fileno()])
        self.children.append(Child(conn, out, err))
        return self.children[-1]

    def client(self, *argv: str) -> list[str]:
        """The script and arguments for a launcher (torchrun SCRIPT ARGS) whose processes run `python *argv`
        as children of this server."""
        return [__file__, "--connect", self.address, *argv]

    def close(self) -> None:
        """End the server and any child a failed test left running."""
        for child in self.children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGKILL)
        self.server.kill()  # it holds nothing to save; a clean interpreter exit takes seconds
        self.server.wait(30)
        Path(self.address).unlink(missing_ok=True)
        Path(self.address).parent.rmdir()


def _request(address: str, request: dict[str, Any], fds: list[int]) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX)
    conn.connect(address)
    socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], fds)
    return conn


def _serve(listener_fd: str, modules: list[str]) -> None:
    listener = socket.socket(fileno=int(listener_fd))
    sys.path[0] = os.getcwd()  # not tests/ (its folders data, models, ... would shadow modules of that name)
    for name in modules:
        importlib.import_module(name)
    tasks = Path("/proc/self/task")
    if tasks.is_dir() and len(list(tasks.iterdir())) > 1:
        threads = [(task / "comm").read_text().strip() for task in tasks.iterdir()]
        sys.exit(f"warm.py: importing {modules} started threads {threads}; forking would be unsafe")
    signal.signal(signal.SIGCHLD, lambda *_: _reap())
    while True:
        conn, _ = listener.accept()
        data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        while not data.endswith(b"\n"):
            data += conn.recv(1 << 20)
        if os.fork() == 0:
            listener.close()
            _manage(conn, fds, json.loads(data))
        conn.close()
        for fd in fds:
            os.close(fd)


def _manage(conn: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
    """A manager: forks the command, reports its pid and exit status; kills it when the caller goes away
    (a failed test, a launcher that SIGKILLed its client). Never returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        _child(fds, **request)
    for fd in fds:
        os.close(fd)
    conn.sendall(f"{pid}\n".encode())
    while not (done := os.waitpid(pid, os.WNOHANG))[0]:
        if select.select([conn], [], [], 0.05)[0] and not conn.recv(1):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os._exit(0)
    conn.sendall(f"{os.waitstatus_to_exitcode(done[1])}\n".encode())
    os._exit(0)


def _reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _child(fds: list[int], argv: list[str], cwd: str, env: dict[str, str]) -> None:
    """Become `python *argv` on the caller's streams `fds`: never returns."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
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


def _connect(address: str, argv: list[str]) -> None:
    """The client: run `python *argv` as a child of the server on this process's streams; pass SIGTERM and
    SIGINT on; exit with its status (die by its signal)."""
    conn = _request(address, {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}, [0, 1, 2])
    lines = conn.makefile("rb")
    pid = int(lines.readline())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _: os.kill(pid, signum))
    code = int(lines.readline())
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    mode, where, *rest = sys.argv[1:]
    _serve(where, rest) if mode == "--serve" else _connect(where, rest)
