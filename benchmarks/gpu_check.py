"""One prepared GPU command (issue 23): every GPU check and the full-length reproductions, in priority order,
inside a time budget, continued in the next lease where this one stopped.

Steps, in this order; each is timed and skipped when the budget left cannot hold its estimate (the wall time
it took in an earlier lease, else a first guess); a step that overruns is killed when the budget ends:

    env            GPU name, torch / CUDA / cuDNN versions, free GPU memory (every lease)
    cuda_tests     `pytest -m cuda`: the suite's CUDA-only tests (CUDA-graph step, metrics and UFM on CUDA)
    resume         a short run killed with SIGKILL and resumed, against the same run uninterrupted (twice:
                   the run-to-run difference is what cuDNN's non-determinism allows)
    speed_b128     benchmarks/epoch.py, resnet18 batch 128: the original pipeline vs compile+graph
    speed_b512     the same at batch 512
    metrics_bigk   benchmarks/metrics_bigk.py --device cuda: K = 50,000
    sweep_pack     benchmarks/sweep_speed.py: 4 trials at gpu 0.25 vs the same 4 one after another
    reproductions  the full-length runs (the six center-loss Fashion-MNIST presets at 100 epochs, zhu2021
                   ResNet18 SGD on Fashion-MNIST at 200, the LM grid `lc2024-*` when those presets exist),
                   side by side while that is faster (measured: first run alone, then all), stopped in time

A step that completed in an earlier lease is kept, not run again (`--redo NAME` runs it again); a finished
run is never re-run. --out receives gpu_check.json (every figure, each step's state, wall time, estimate),
gpu_check.md (the summary), gpu_check.log (the steps' output) and runs.tar.gz.000, .001, ... (the runs in a
lean form: config, status and metrics, plus the resume state of unfinished runs; parts under 15 MiB, at most
--carry-mib, 60 MiB by default): 8 files at most, the device tool's limit on what comes back. Copy that folder
into the repository (an ignored path) and name it with --carry in the next lease: the unfinished runs continue
with `nclab train --resume`. A run whose resume state does not fit is carried without it and starts again.

    python benchmarks/gpu_check.py --out OUT [--carry PREVIOUS_OUT] [--budget 540]
    python benchmarks/gpu_check.py --smoke --out /tmp/gc      # every step on the CPU at tiny sizes
    python benchmarks/gpu_check.py --merge OUT                 # finished figures -> RESULTS.md, docs

--smoke runs the same commands, at tiny sizes, so that the GPU command cannot rot between leases; on a 2-core
CPU their imports would cost more than the runs, so each `python ...` command there is a fork of this process
with nclab imported once (Forked), and the sweep's benchmark, mostly Ray waiting, starts at once beside the
steps before it (under 60 s in all).

A lease through the device tool (one command of at most 600 s; 64 MiB carried in: the tracked files plus the
folders named in `carry`; 8 files of at most 16 MiB back). The GPU image has torch, timm, h5py, tensorboard,
but not pydantic (nclab's config: carried as wheels) nor Ray (its wheel alone is over 64 MiB: the sweep step
then records that Ray is missing). Here, from the repository root (data/, .whl/ and runs_gpu/ are ignored):

    mkdir -p data/FashionMNIST/raw && cp /usr/share/datasets/fashion-mnist/*.gz data/FashionMNIST/raw/
    PYTHONPATH=src python -c "from nclab.data.text import read_corpus; print(read_corpus('kjv')[1], end='')" \
        > data/kjv.txt                                       # the LM grid's corpus (lc2024-* presets)
    python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux2014_x86_64 -d .whl pydantic==2.14.4 pydantic-core==2.50.5 \
        annotated-types==0.8.0 typing-inspection==0.4.5

then the device command, with carry = data, .whl, runs_gpu (runs_gpu may not exist yet) and timeout_s 600:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && PYTHONPATH=/tmp/site:src \
        python3 benchmarks/gpu_check.py --out $OUT/gpu --carry runs_gpu --carry-mib 22

(--carry-mib 22: Fashion-MNIST's 31 MB, the KJV's 4 MB, the wheels' 3 MB and the repository's 3 MB travel
too), and here afterwards: `rm -rf runs_gpu && cp -r FILES_AT/gpu runs_gpu` (the next lease's carry), then
`python benchmarks/gpu_check.py --merge runs_gpu` and commit benchmarks/RESULTS.md and docs/reproductions.md.
The budget counts from the start of main (nclab and torch are imported inside it); its last 20 s are kept for
packing the runs.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime
import functools
import importlib.util
import io
import json
import os
import re
import runpy
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NCLAB = [sys.executable, "-m", "nclab"]
PART_BYTES = 15 * 2**20  # one runs.tar.gz part (files back from the device: 16 MiB each at most)
MAX_PARTS = 5  # + gpu_check.json, .md, .log = 8 files, the device tool's limit
MAX_CARRY_MIB = 70  # under the 5 parts of 15 MiB (gzip may add a little to incompressible states)
LOG_TAIL = 20_000  # characters of each command's output kept in gpu_check.log
TOLERANCE = (
    "cuDNN's benchmark mode picks kernels by timing and some kernels (backward convolutions) accumulate with "
    "atomics, so two uninterrupted CUDA runs already differ by float32 rounding that training amplifies; the "
    "resumed run passes when its largest difference from the uninterrupted run is at most 10x the difference "
    "between the two uninterrupted runs (CPU and deterministic kernels: exactly equal)"
)
CENTER = [f"center-fashion-{loss}-{d}" for loss in ("xent", "center", "standalone") for d in ("2d", "128d")]
GPU_RUN = ("train.device=cuda", "train.cuda_graph=true", "data.root=data")  # data/FashionMNIST/raw carried
KJV = ("data.corpus=data/kjv.txt",)  # the text `bible` prints (nclab.data.text), carried
# --smoke's tiny runs: Gaussian data of the digits' size (a fresh process loads it without scikit-learn)
SMOKE_DATA = ("data=gaussian", "data.train_per_class=150", "data.test_per_class=40")


class Budget:
    """Seconds left until the end of the budget, less a margin kept for packing and writing the outputs."""

    def __init__(self, seconds: float, margin: float) -> None:
        self.end = time.monotonic() + seconds - margin

    def left(self) -> float:
        return self.end - time.monotonic()


@dataclass
class Context:
    args: argparse.Namespace
    budget: Budget
    work: Path
    log: io.TextIOBase
    previous: dict[str, Any]  # this step's record from an earlier lease ({} if none)
    early: dict[str, subprocess.Popen | Forked]  # --smoke: started ahead of their step (call takes them)

    @property
    def smoke(self) -> bool:
        return self.args.smoke

    def launch(self, cmd: list[str], log_path: Path) -> subprocess.Popen | Forked:
        return start(cmd, log_path, self.smoke)


@dataclass
class Outcome:
    figures: dict[str, Any]
    completed: bool
    command: str
    note: str = ""


def _env() -> dict[str, str]:
    paths = [str(REPO / "src"), str(REPO / "benchmarks"), os.environ.get("PYTHONPATH", "")]
    return os.environ | {"PYTHONPATH": os.pathsep.join(p for p in paths if p), "PYTHONUNBUFFERED": "1"}


def _kill(proc: subprocess.Popen | Forked, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def start(cmd: list[str], log_path: Path, smoke: bool) -> subprocess.Popen | Forked:
    """`cmd` started as a new process, or in --smoke as a fork of this one (Forked) where that is safe:
    no CUDA initialised here (a fork could not use it: --smoke on a GPU machine), one thread."""
    import torch

    fork = smoke and not torch.cuda.is_initialized() and fork_safe()
    return Forked(cmd, log_path) if fork else launch(cmd, log_path)


def launch(cmd: list[str], log_path: Path) -> subprocess.Popen:
    """A child in its own process group (killed as a whole), output to `log_path`."""
    with log_path.open("w") as out:
        return subprocess.Popen(
            cmd, cwd=REPO, env=_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


# what the tiny runs import (torch._dynamo: at the first optimizer step), sympy included: 1.7 s of 3.2 s a run
SMOKE_IMPORTS = ("nclab.cli", "nclab.train", "nclab.data.embedded", "nclab.report.plots", "torch._dynamo")


@functools.cache
def fork_safe() -> bool:
    """Import what the tiny runs import, once (each forked child has it then); whether this process is still
    single-threaded, as a safe fork needs (pyarrow's allocator, which sklearn.datasets loads through pandas,
    is told to start no thread)."""
    os.environ.setdefault("JE_ARROW_MALLOC_CONF", "background_thread:false")
    for module in SMOKE_IMPORTS:
        importlib.import_module(module)
    tasks = Path("/proc/self/task")
    return not tasks.is_dir() or len(list(tasks.iterdir())) == 1


class Forked:
    """--smoke: `cmd` (`python -m MODULE ...` or `python SCRIPT ...`) run by runpy in a fork of this process,
    which has torch and nclab imported already: on a 2-core CPU the imports cost more than the tiny runs.
    The child leads its own process group; poll, wait, pid and returncode as in subprocess.Popen."""

    def __init__(self, cmd: list[str], log_path: Path) -> None:
        self.args, self.returncode = cmd, None
        sys.stdout.flush()  # else the child's exit writes this process's pending output again
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:
            _run_forked(cmd, log_path)
        with contextlib.suppress(OSError):  # the child does the same; whichever comes first
            os.setpgid(self.pid, self.pid)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while self.poll() is None:
            if time.monotonic() > end:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            time.sleep(0.02)
        return self.returncode


def _run_forked(cmd: list[str], log_path: Path) -> None:
    """In the forked child: run `cmd` as `python` would (its exit status), then leave without the parent's
    clean-ups (its atexit functions, its temporary folder)."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    os.chdir(REPO)
    os.environ.update(_env())  # what `launch` gives a new process (the commands it starts inherit it)
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 (this process's own, to its end)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    atexit._clear()
    code = 1
    try:
        if cmd[1] == "-m":  # sys.path[0] as python sets it: the working directory, or the script's folder
            sys.argv, sys.path[0] = cmd[2:], str(REPO)
            runpy.run_module(cmd[2], run_name="__main__", alter_sys=True)
        else:
            sys.argv, sys.path[0] = cmd[1:], str(Path(cmd[1]).resolve().parent)
            runpy.run_path(cmd[1], run_name="__main__")
        code = 0
    except SystemExit as stop:
        code = 0 if stop.code is None else stop.code if isinstance(stop.code, int) else 1
        if code == 1 and not isinstance(stop.code, int):  # as python: the message, exit status 1
            print(stop.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def call(ctx: Context, cmd: list[str], name: str) -> tuple[int | None, str]:
    """Run `cmd` until it exits or the budget ends (then its process group is killed: return code None);
    returns (return code, output). The output's tail goes to gpu_check.log."""
    path = ctx.work / f"{name}.out"
    proc = ctx.early.pop(name, None) or ctx.launch(cmd, path)
    try:
        rc: int | None = proc.wait(timeout=max(ctx.budget.left(), 0.1))
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.wait()
        rc = None
    text = path.read_text(errors="replace")
    ctx.log.write(f"\n$ {' '.join(cmd)}\n{text[-LOG_TAIL:]}\n[return code {rc}]\n")
    ctx.log.flush()
    return rc, text


def shown(cmd: list[str]) -> str:
    """The command as one types it from the repository root."""
    words = ["python" if w == sys.executable else w for w in cmd]
    return " ".join(str(Path(w).relative_to(REPO)) if w.startswith(str(REPO)) else w for w in words)


# --- steps
def env_step(ctx: Context) -> Outcome:
    import torch  # here, not at the top: the budget's clock holds every import

    figures: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": sys.version.split()[0],
    }
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        figures |= {
            "device": torch.cuda.get_device_name(),
            "cudnn": torch.backends.cudnn.version(),
            "free_gib": round(free / 2**30, 1),
            "total_gib": round(total / 2**30, 1),
        }
    else:
        figures |= {"device": f"CPU x{os.cpu_count()} (no CUDA device visible)", "cudnn": None}
        figures |= {"free_gib": None, "total_gib": None}
    figures["line"] = (
        f"{figures['device']}, torch {figures['torch']}, CUDA {figures['cuda']}, cuDNN {figures['cudnn']}, "
        f"free {figures['free_gib']} of {figures['total_gib']} GiB"
    )
    return Outcome(figures, True, "python -c 'import torch; ...'")


def cuda_tests(ctx: Context) -> Outcome:
    paths = ["tests/test_step.py"] if ctx.smoke else ["tests"]
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-p", "no:cacheprovider", "-rfEs", *paths]
    rc, text = call(ctx, cmd, "cuda_tests")
    counts = {k: 0 for k in ("passed", "failed", "skipped", "errors", "deselected")}
    summary = [
        line for line in text.splitlines() if re.search(r"\d+ (passed|failed|skipped|deselected)", line)
    ]
    for n, kind in re.findall(
        r"(\d+) (passed|failed|skipped|errors?|deselected)", summary[-1] if summary else ""
    ):
        counts["errors" if kind.startswith("error") else kind] = int(n)
    failed = [line.split()[1] for line in text.splitlines() if line.startswith(("FAILED", "ERROR"))]
    figures = counts | {"all_passed": rc == 0, "failed_tests": failed, "return_code": rc}
    ran = rc in (0, 1) and bool(summary)  # 1: some failed (a result, not a reason to run them again)
    return Outcome(figures, ran, shown(cmd), "" if rc is not None else "stopped at the end of the budget")


def _metrics(run: Path) -> list[dict[str, Any]]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a torn last line of a killed run
            break
    return records


def _max_diff(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> float:
    """Largest absolute difference over every numeric metric of every epoch both records hold."""
    diffs = [
        abs(x[k] - y[k])
        for x, y in zip(a, b, strict=False)
        for k in x.keys() & y.keys()
        if isinstance(x[k], float) and isinstance(y[k], float)
    ]
    return max(diffs, default=float("nan"))


def _state_epoch(run: Path) -> int:
    """The epoch of the run's resume state (0: none)."""
    from safetensors import safe_open

    path = run / "checkpoints" / "state.safetensors"
    if not path.is_file():
        return 0
    with safe_open(str(path), "pt") as f:
        return int(f.metadata()["epoch"])


def resume_step(ctx: Context) -> Outcome:
    """A, B: the run uninterrupted; C: killed with SIGKILL once `kill_at` epochs are in its metrics, then
    `nclab train --resume`. Max |A - B| is the run-to-run floor, max |A - C| the resume's difference."""
    epochs = 4 if ctx.smoke else 6
    kill_at = epochs // 2
    if ctx.smoke:  # no end-of-run figures: the step compares metrics, and drawing is most of a tiny run
        settings = ["model.width=16", "model.depth=1", "train.device=cpu", "train.figures=false", *SMOKE_DATA]
    else:  # convolutions: cuDNN
        settings = ["data=fashion_mnist", "data.per_class=500", "model=convnet", "model.width=0.5", *GPU_RUN]
    root = ctx.work / "resume"
    base = [*NCLAB, "train", *settings, f"epochs={epochs}", f"out={root}"]
    procs = {n: ctx.launch([*base, f"name={n}", "--quiet"], ctx.work / f"resume_{n}.out") for n in "ABC"}
    killed_after = None
    while ctx.budget.left() > 0 and any(p.poll() is None for p in procs.values()):
        if killed_after is None and len(_metrics(root / "C")) >= kill_at:
            _kill(procs["C"])
            killed_after = len(_metrics(root / "C"))
        time.sleep(0.05)
    for n, p in procs.items():
        _kill(p)
        p.wait()
        ctx.log.write(
            f"\n[resume {n}: return code {p.returncode}]\n{(ctx.work / f'resume_{n}.out').read_text()}"
        )
    command = f"{shown(base)} name=C  # SIGKILL after epoch {kill_at}, then nclab train --resume {root}/C"
    command = command.replace(str(root), "RUNS")
    if killed_after is None or ctx.budget.left() <= 0:
        why = "C finished before the kill" if killed_after is None else "stopped at the end of the budget"
        return Outcome({"kill_at": kill_at}, False, command, why)
    resumed_from = _state_epoch(root / "C")
    rc, _ = call(ctx, [*NCLAB, "train", "--resume", str(root / "C"), "--quiet"], "resume_C")
    a, b, c = (_metrics(root / n) for n in "ABC")
    noise, diff = _max_diff(a, b), _max_diff(a, c)
    figures = {
        "epochs": epochs,
        "killed_after_epoch": killed_after,
        "resumed_from_epoch": resumed_from,
        "epochs_after_resume": len(c),
        "max_abs_diff_run_to_run": noise,
        "max_abs_diff_resumed": diff,
        "tolerance": TOLERANCE,
        "within_tolerance": bool(len(c) == len(a) == epochs and diff <= 10 * noise),
    }
    return Outcome(figures, rc == 0 and len(c) == epochs, command)


def _rows(text: str, first_cell: str) -> list[list[str]]:
    """Markdown table rows of a benchmark's output whose first cell starts with `first_cell`."""
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith(f"| {first_cell}")
    ]


SPEED_HEADER = ["model", "batch", "pipeline", "s / epoch", "vs original", "warm-up (s)", "peak GPU MiB"]
SPEED_HEADER += ["step_acc", "train_acc", "nc1"]


def speed_step(batch: int) -> Callable[[Context], Outcome]:
    def step(ctx: Context) -> Outcome:
        if ctx.smoke:
            sizes = ["--device", "cpu", "--n", "64", "--settings", "fp32", "--epochs", "1", "--workers", "1"]
            sizes += ["--batches", str(batch // 8), "--set", "model.width=0.0625"]
        else:
            sizes = ["--batches", str(batch), "--settings", "compile+graph"]
        cmd = [sys.executable, str(REPO / "benchmarks/epoch.py"), "--models", "resnet18", *sizes]
        rc, text = call(ctx, cmd, f"speed_b{batch}")
        rows = _rows(text, "resnet18")
        seconds = {r[2].split(" (")[0]: float(r[3]) for r in rows}
        figures = {
            "device_line": text.splitlines()[0] if text else "",
            "header": SPEED_HEADER,
            "rows": rows,
            "s_per_epoch": seconds,
        }
        return Outcome(figures, rc == 0 and len(rows) == 2, shown(cmd))

    return step


def metrics_step(ctx: Context) -> Outcome:
    sizes = (
        ["--classes", "200", "--naive-classes", "50", "--dim", "16"] if ctx.smoke else ["--device", "cuda"]
    )
    cmd = [sys.executable, str(REPO / "benchmarks/metrics_bigk.py"), *sizes]
    rc, text = call(ctx, cmd, "metrics_bigk")
    rows = [r for r in _rows(text, "") if r and r[0].replace(",", "").isdigit()]
    notes = [line for line in text.splitlines() if line.startswith(("K=", "max relative"))]
    figures = {
        "device_line": text.splitlines()[0] if text else "",
        "header": ["K", "N", "implementation", "time (s)", "peak memory above the inputs (GiB)"],
        "rows": rows,
        "notes": notes,
    }
    return Outcome(figures, rc == 0 and len(rows) == 3, shown(cmd))


def sweep_command(smoke: bool) -> list[str]:
    tiny = ["--runs", "1", "--epochs", "1", "--set", "train.figures=false"]  # drawing: most of a tiny run
    tiny += [arg for setting in SMOKE_DATA for arg in ("--set", setting)]
    sizes = tiny if smoke else ["--runs", "4", "--epochs", "5", "--gpu", "0.25"]
    sizes += ["--device", "cpu" if smoke else "cuda"]
    return [sys.executable, str(REPO / "benchmarks/sweep_speed.py"), *sizes]


def sweep_step(ctx: Context) -> Outcome:
    cmd = sweep_command(ctx.smoke)
    if importlib.util.find_spec("ray") is None:
        note = "ray is not installed on this machine (pip install 'ray[tune]')"
        return Outcome({"ray_installed": False}, False, shown(cmd), note)
    rc, text = call(ctx, cmd, "sweep_pack")
    lines = [line for line in text.splitlines() if line.startswith("{")]
    figures = json.loads(lines[-1]) if rc == 0 and lines else {}
    return Outcome(figures, bool(figures), shown(cmd))


# --- the full-length runs
@dataclass(frozen=True)
class Planned:
    name: str
    preset: str
    overrides: tuple[str, ...]


def planned_runs(smoke: bool) -> list[Planned]:
    """The reproductions, in launch order; the LM grid is every preset named lc2024-* at run time."""
    from nclab.config import preset_names, resolve

    if smoke:
        tiny = ("model.width=16", "model.depth=1", "train.device=cpu", *SMOKE_DATA)
        return [
            Planned("smoke-short", "demo", (*tiny, "epochs=2")),
            Planned("smoke-long", "demo", (*tiny, "epochs=40")),
        ]
    runs = [Planned(p, p, GPU_RUN) for p in CENTER]
    fast = ("train.precision=bf16", "train.channels_last=true")
    runs.append(Planned("zhu2021-fashion-sgd", "zhu2021-mnist-sgd", ("data=fashion_mnist", *GPU_RUN, *fast)))
    for name in (p for p in preset_names() if p.startswith("lc2024-")):
        kjv = resolve(preset=name).data.corpus == "kjv"  # no `bible` program there: the text is carried
        runs.append(Planned(name, name, ("train.device=cuda", "data.root=data", *(KJV if kjv else ()))))
    return runs


LEAN = ("config.yaml", "status.json", "metrics.jsonl", "labels.safetensors")
STATE = "checkpoints/state.safetensors"


def restore(carry: Path, runs: Path) -> None:
    """Unpack runs.tar.gz.* of an earlier lease into `runs`."""
    parts = sorted(carry.glob("runs.tar.gz.[0-9][0-9][0-9]"))
    if parts:
        data = b"".join(p.read_bytes() for p in parts)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(runs, filter="data")


def _finished(run: Path) -> bool:
    status = run / "status.json"
    return status.is_file() and json.loads(status.read_text()).get("state") == "finished"


def pack(runs: Path, out: Path, limit: int) -> dict[str, str]:
    """Every run dir under `runs` in its lean form into out/runs.tar.gz.NNN: config, status and metrics, plus
    the resume state of each unfinished run while the total stays under `limit` bytes (smallest first);
    returns what went in, per run."""
    files: list[tuple[Path, str]] = []
    carried: dict[str, str] = {}
    for run in sorted(p for p in runs.iterdir() if p.is_dir()):
        files += [(run / f, f"{run.name}/{f}") for f in LEAN if (run / f).is_file()]
        carried[run.name] = "metrics (finished)" if _finished(run) else "metrics (no resume state yet)"
    total = sum(p.stat().st_size for p, _ in files)
    states = sorted(
        (p.stat().st_size, p.parents[1].name, p)
        for p in runs.glob(f"*/{STATE}")
        if not _finished(p.parents[1])
    )
    for size, name, path in states:
        if total + size <= limit:
            files.append((path, f"{name}/{STATE}"))
            carried[name] = "metrics + resume state"
            total += size
        else:
            carried[name] = (
                f"metrics only: its resume state ({size / 2**20:.0f} MiB) does not fit; starts again"
            )
    for old in out.glob("runs.tar.gz.*"):
        old.unlink()
    if not files:
        return carried
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for path, arcname in files:
            tar.add(path, arcname)
    data = buffer.getvalue()
    for i in range(0, len(data), PART_BYTES):
        (out / f"runs.tar.gz.{i // PART_BYTES:03d}").write_bytes(data[i : i + PART_BYTES])
    return carried


def _epochs_per_s(samples: list[tuple[float, int]]) -> float | None:
    """Epochs per second from the first epoch completed while sampled (the warm-up epoch before it left
    out) to the last one; None before three were seen."""
    firsts: dict[int, float] = {}
    for t, e in samples:
        firsts.setdefault(e, t)
    epochs = sorted(firsts)[1:]  # the count when sampling began: no time of completion
    if len(epochs) < 3:
        return None
    return (epochs[-1] - epochs[1]) / (firsts[epochs[-1]] - firsts[epochs[1]])


class Fleet:
    """The run processes, the epoch counts seen (time, epochs) per run, and stopping them all."""

    def __init__(self, ctx: Context, runs: Path) -> None:
        self.ctx, self.runs = ctx, runs
        self.procs: dict[str, subprocess.Popen | Forked] = {}
        self.samples: dict[str, list[tuple[float, int]]] = {}

    def start(self, name: str, cmd: list[str]) -> None:
        self.procs[name] = self.ctx.launch(cmd, self.ctx.work / f"run_{name}.out")
        self.samples[name] = [(time.monotonic(), len(_metrics(self.runs / name)))]

    def running(self) -> int:
        return sum(p.poll() is None for p in self.procs.values())

    def poll(self, seconds: float) -> None:
        time.sleep(seconds)
        now = time.monotonic()
        for name in self.procs:
            self.samples[name].append((now, len(_metrics(self.runs / name))))

    def new_epochs(self, name: str) -> int:
        return self.samples[name][-1][1] - self.samples[name][0][1]

    def stop(self, grace: float) -> None:
        """SIGTERM (a run finishes writing its epoch), SIGKILL after `grace` seconds; logs the outputs."""
        for p in self.procs.values():
            _kill(p, signal.SIGTERM)
        end = time.monotonic() + grace
        for p in self.procs.values():
            try:
                p.wait(timeout=max(end - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _kill(p)
                p.wait()
        for name in self.procs:
            text = (self.ctx.work / f"run_{name}.out").read_text(errors="replace")
            self.ctx.log.write(f"\n[run {name}]\n{text[-LOG_TAIL:]}\n")


def plan_runs(
    ctx: Context, runs: Path, grace: float
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, list[str]]]]:
    """Each planned run's record (command, epochs, the epoch it starts from) and the commands of those to
    launch now: unfinished, and either carried with their state or able to finish within the budget."""
    from nclab.config import resolve

    earlier = ctx.previous.get("figures", {})
    info: dict[str, dict[str, Any]] = {}
    todo: list[tuple[str, list[str]]] = []
    for plan in planned_runs(ctx.smoke):
        run = runs / plan.name
        command = shown([*NCLAB, "train", "--preset", plan.preset, *plan.overrides])
        epochs = resolve(overrides=list(plan.overrides), preset=plan.preset).train.epochs
        info[plan.name] = {"preset": plan.preset, "command": command, "epochs": epochs, "note": ""}
        info[plan.name]["start_epoch"] = start = epochs if _finished(run) else _state_epoch(run)
        if start >= epochs:
            continue
        if (run / "config.yaml").is_file():
            todo.append((plan.name, [*NCLAB, "train", "--resume", str(run), "--quiet"]))
        else:
            where = [f"out={runs}", f"name={plan.name}", "--quiet"]
            todo.append((plan.name, [*NCLAB, "train", "--preset", plan.preset, *plan.overrides, *where]))
    for name, _ in list(todo):  # a run whose state cannot be carried starts only where it can finish
        before = earlier.get("runs", {}).get(name, {})
        rate = before.get("epochs_per_s")
        if str(before.get("carried")).startswith("metrics only") and rate and len(todo) > 1:
            need = (info[name]["epochs"] - info[name]["start_epoch"]) / rate
            if need > ctx.budget.left() - grace:
                info[name]["note"] = f"waits for a lease with {need:.0f} s left (its state is not carried)"
                todo = [t for t in todo if t[0] != name]
    return info, todo


def reproductions(ctx: Context) -> Outcome:
    """Launch every unfinished run (`--resume` when its dir exists): the first alone until its speed shows,
    then the rest beside it, unless an earlier lease measured side by side to be slower (then one after
    another); stop them all before the budget ends (in --smoke once each has 2 new epochs)."""
    runs = ctx.work / "runs"
    earlier = ctx.previous.get("figures", {})
    grace, tick = (3.0, 0.2) if ctx.smoke else (20.0, 1.0)
    info, todo = plan_runs(ctx, runs, grace)
    concurrency = earlier.get("concurrency", {})
    side_by_side = concurrency.get("gain", 1.0) >= 1.0
    fleet = Fleet(ctx, runs)
    queue = list(todo)
    alone = together = None
    together_since = 1
    reason = "every run finished"
    if queue:
        first, cmd = queue.pop(0)
        fleet.start(first, cmd)
        probe_end = time.monotonic() + 0.25 * ctx.budget.left()
        while (
            queue and not concurrency and fleet.running() and time.monotonic() < probe_end and alone is None
        ):
            fleet.poll(tick)
            alone = _epochs_per_s(fleet.samples[first])
        together_since = len(fleet.samples[first])
    while True:
        while queue and (side_by_side or not fleet.running()):
            fleet.start(*queue.pop(0))
        if not queue and not fleet.running():
            break
        if ctx.budget.left() <= grace:
            reason = "stopped before the end of the budget"
            break
        if ctx.smoke and all(
            fleet.new_epochs(n) >= 2 or p.poll() is not None for n, p in fleet.procs.items()
        ):
            reason = "stopped after 2 new epochs of each run (--smoke)"
            break
        fleet.poll(tick)
    fleet.stop(grace)
    if todo and len(fleet.procs) > 1:
        together = _epochs_per_s(fleet.samples[todo[0][0]][together_since - 1 :])
    if alone and together and side_by_side:
        n = len(fleet.procs)
        concurrency = {"runs": n, "alone_epochs_per_s": alone, "side_by_side_epochs_per_s": together}
        concurrency["gain"] = n * together / alone  # > 1: side by side is faster (runs of similar cost)
    for name, run in info.items():
        records = _metrics(runs / name)
        tests = [
            r[k] for r in records for k in ("test_acc", "test_center_acc") if isinstance(r.get(k), float)
        ]
        run |= {
            "launched": name in fleet.procs,
            "return_code": fleet.procs[name].returncode if name in fleet.procs else None,
            "resumed_from": run["start_epoch"] if name in fleet.procs and run["start_epoch"] else None,
            "epochs_done": len(records),
            "finished": len(records) >= run["epochs"],
            "epochs_per_s": _epochs_per_s(fleet.samples[name]) if name in fleet.samples else None,
            "last": {k: v for k, v in (records[-1] if records else {}).items() if k in SHOWN},
            "best_test_acc": max(tests, default=None),
        }
    figures = {"runs": info, "concurrency": concurrency}
    return Outcome(figures, all(r["finished"] for r in info.values()), "each run's command below", reason)


SHOWN = ("epoch", "train_acc", "test_acc", "center_acc", "test_center_acc", "nc1", "nc2_h", "nc2_w", "nc3")
SHOWN += ("nc4_ncc",)


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    estimate_s: float  # first guess on the GPU (open-ended: the smallest useful slice)
    smoke_estimate_s: float
    run: Callable[[Context], Outcome]
    every_lease: bool = False  # run again although completed in an earlier lease
    open_ended: bool = False  # takes whatever the budget leaves


STEPS = [
    Step("env", "Environment", 5, 2, env_step, every_lease=True),
    Step("cuda_tests", "CUDA-only tests (pytest -m cuda)", 150, 10, cuda_tests),  # smoke: + the first fork
    Step("resume", "Resume on CUDA after SIGKILL", 90, 15, resume_step),
    Step("speed_b128", "Epoch speed, resnet18 batch 128", 150, 5, speed_step(128)),
    Step("speed_b512", "Epoch speed, resnet18 batch 512", 110, 5, speed_step(512)),
    Step("metrics_bigk", "NC metrics at K = 50,000", 90, 5, metrics_step),
    Step("sweep_pack", "Sweep: 4 trials at gpu 0.25 vs one after another", 150, 30, sweep_step),
    Step(
        "reproductions", "Full-length reproductions", 60, 10, reproductions, every_lease=True, open_ended=True
    ),
]


def estimate(step: Step, old: dict[str, Any], smoke: bool) -> float:
    """The step's first guess, or the wall time it took (a stopped step: at least 1.5x what it had)."""
    guess = step.smoke_estimate_s if smoke else step.estimate_s
    wall = old.get("wall_s")
    if step.open_ended or not wall:
        return guess
    return wall if old.get("completed") else max(guess, 1.5 * wall)


# --- the command
def run_steps(args: argparse.Namespace) -> dict[str, Any]:
    earlier = args.carry / "gpu_check.json"
    previous = json.loads(earlier.read_text()) if earlier.is_file() else {}
    if previous and previous["smoke"] != args.smoke:
        raise SystemExit(f"error: {earlier} is from a {'smoke' if previous['smoke'] else 'full'} run")
    data = {"smoke": args.smoke, "leases": previous.get("leases", []), "steps": previous.get("steps", {})}
    started = time.monotonic()
    budget = Budget(args.budget, 3 if args.smoke else 20)
    now = datetime.datetime.now(datetime.timezone.utc)
    lease: dict[str, Any] = {"date": now.strftime("%Y-%m-%d %H:%M UTC"), "budget_s": args.budget}
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp,
        (args.out / "gpu_check.log").open("w") as log,
    ):
        work = Path(tmp)
        (work / "runs").mkdir()
        restore(args.carry, work / "runs")
        early = start_early(args, budget, work, data["steps"])
        for step in STEPS:
            old = data["steps"].get(step.name, {})
            if due(step, old, args):
                data["steps"][step.name] = run_step(step, Context(args, budget, work, log, old, early))
                data["steps"][step.name]["date"] = lease["date"]
                _write(args.out, data)
        for proc in early.values():  # its step was skipped
            _kill(proc)
            proc.wait()
        carried = pack(work / "runs", args.out, int(args.carry_mib * 2**20))
        for name, run in data["steps"].get("reproductions", {}).get("figures", {}).get("runs", {}).items():
            run["carried"] = carried.get(name, "nothing (not started)")
    lease["wall_s"] = round(time.monotonic() - started, 1)
    lease["env"] = data["steps"]["env"]["figures"]["line"]
    data["leases"].append(lease)
    _write(args.out, data)
    return data


def due(step: Step, old: dict[str, Any], args: argparse.Namespace) -> bool:
    """Whether `step` runs in this lease: not completed in an earlier one, run every lease, or in --redo."""
    return not old.get("completed") or step.every_lease or step.name in args.redo


def start_early(
    args: argparse.Namespace, budget: Budget, work: Path, steps: dict[str, Any]
) -> dict[str, subprocess.Popen | Forked]:
    """--smoke: the sweep's benchmark started at once (a fork, as the other commands), beside the steps
    before it: Ray's start mostly waits, and a 2-core CPU has a core to spare. Only when the budget holds the
    estimates of those steps and its own. On the GPU every step runs alone."""
    sweep = next(i for i, s in enumerate(STEPS) if s.name == "sweep_pack")
    ahead = [(s, steps.get(s.name, {})) for s in STEPS[: sweep + 1]]
    ahead = [(s, old) for s, old in ahead if due(s, old, args)]
    if not (args.smoke and ahead and ahead[-1][0] is STEPS[sweep] and importlib.util.find_spec("ray")):
        return {}
    if budget.left() < sum(estimate(s, old, smoke=True) for s, old in ahead):
        return {}
    return {
        STEPS[sweep].name: start(sweep_command(smoke=True), work / f"{STEPS[sweep].name}.out", smoke=True)
    }


def run_step(step: Step, ctx: Context) -> dict[str, Any]:
    """The step's record: it runs when the budget left holds its estimate, else is skipped (the figures of an
    earlier lease kept)."""
    need = estimate(step, ctx.previous, ctx.smoke)
    record = {"title": step.title, "estimate_s": need, "command": ""}
    if ctx.budget.left() < need:
        note = f"skipped: {max(ctx.budget.left(), 0):.0f} s left, the step needs about {need:.0f} s"
        print(f"{step.name}: {note}", flush=True)
        kept = {"figures": {}, "wall_s": None} | ctx.previous
        return kept | record | {"state": "skipped", "completed": False, "note": note}
    t = time.monotonic()
    outcome = step.run(ctx)
    wall = round(time.monotonic() - t, 1)
    state = "done" if outcome.completed else ("stopped" if ctx.budget.left() <= 0 else "incomplete")
    print(f"{step.name}: {state} in {wall} s {outcome.note}".rstrip(), flush=True)
    record |= {"state": state, "completed": outcome.completed, "wall_s": wall, "command": outcome.command}
    return record | {"figures": outcome.figures, "note": outcome.note}


def _write(out: Path, data: dict[str, Any]) -> None:
    (out / "gpu_check.json").write_text(json.dumps(data, indent=1) + "\n")
    (out / "gpu_check.md").write_text(summary(data))


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join("-" if c is None else str(c) for c in row) + " |" for row in rows]


def _num(x: Any) -> Any:
    return f"{x:.4g}" if isinstance(x, float) else x


def figure_lines(fig: dict[str, Any], leave_out: tuple[str, ...] = ()) -> list[str]:
    """A step's figures in Markdown, the same in the summary and in the merged docs: a benchmark's table (its
    device line, the table, its notes), else one `- name: value` line each."""
    if "rows" in fig:
        return [fig.get("device_line", ""), "", *_table(fig["header"], fig["rows"]), *fig.get("notes", [])]
    return [f"- {k}: {_num(v)}" for k, v in fig.items() if k not in leave_out]


def run_rows(runs: dict[str, dict[str, Any]], finished_only: bool) -> list[list[Any]]:
    rows = []
    for name, r in runs.items():
        if finished_only and not r["finished"]:
            continue
        last = r["last"]
        acc = (
            last.get("train_acc", last.get("center_acc")),
            last.get("test_acc", last.get("test_center_acc")),
        )
        metrics = [last.get(k) for k in ("nc1", "nc2_h", "nc2_w", "nc3", "nc4_ncc")]
        row = [
            name,
            f"`{r['command']}`",
            f"{r['epochs_done']} / {r['epochs']}",
            *acc,
            r["best_test_acc"],
            *metrics,
        ]
        rows.append([_num(c) for c in row])
    return rows


RUN_HEADER = ["run", "command", "epochs", "train acc", "test acc", "best test acc", "nc1", "nc2_h", "nc2_w"]
RUN_HEADER += ["nc3", "nc4_ncc"]


def summary(data: dict[str, Any]) -> str:
    """The Markdown summary: one table of the steps, then each step's figures."""
    lines = [
        "# GPU check (benchmarks/gpu_check.py)" + (" -- smoke run on the CPU" if data["smoke"] else ""),
        "",
    ]
    lines += [
        f"- lease {le['date']}: {le.get('env', '')}, {le.get('wall_s')} s of {le['budget_s']}"
        for le in data["leases"]
    ]
    rows = [
        [name, s["state"], s.get("wall_s"), s["estimate_s"], s["date"], s.get("note", "")]
        for name, s in data["steps"].items()
    ]
    lines += ["", *_table(["step", "state", "wall (s)", "estimate (s)", "date", "note"], rows), ""]
    for name, s in data["steps"].items():
        fig = s.get("figures") or {}
        if not fig:
            continue
        lines += [f"## {s['title']}", "", f"`{s['command']}`", ""]
        if name == "reproductions":
            lines += _table(RUN_HEADER, run_rows(fig["runs"], finished_only=False))
            lines += ["", "carried: " + "; ".join(f"{n}: {r.get('carried')}" for n, r in fig["runs"].items())]
            notes = [f"{n}: {r['note']}" for n, r in fig["runs"].items() if r.get("note")]
            lines += ["", "notes: " + "; ".join(notes)] if notes else []
            if fig["concurrency"]:
                lines += ["", "side by side: " + json.dumps(fig["concurrency"])]
        else:
            lines += figure_lines(fig)
        lines.append("")
    return "\n".join(lines)


# --- merging into the docs
BEGIN, END = "<!-- gpu_check: begin -->", "<!-- gpu_check: end -->"


def _replace_section(path: Path, title: str, body: list[str]) -> None:
    """Put `body` between the gpu_check markers of `path` (appended at the end the first time)."""
    text = path.read_text()
    block = "\n".join([BEGIN, title, "", *body, END])
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def merge(data: dict[str, Any], results: Path, reproductions_md: Path) -> None:
    """Finished figures of gpu_check.json into benchmarks/RESULTS.md and docs/reproductions.md (tables with
    the commands and dates); a step or run that has not finished is named, without figures."""
    steps = data["steps"]
    env = [le["env"] for le in data["leases"] if "env" in le]
    body = [
        "Figures of `python benchmarks/gpu_check.py` (each step with its command and date; leases: "
        + "; ".join(f"{le['date']}: {le.get('env', '')}" for le in data["leases"])
        + ").",
        "",
    ]
    for name, s in steps.items():
        if name in ("env", "reproductions"):
            continue
        fig = s.get("figures") or {}
        if not s.get("completed"):
            body += [f"- {s['title']}: not finished yet ({s.get('note') or s['state']})", ""]
            continue
        body += [f"### {s['title']} ({s['date']})", "", f"    {s['command']}", ""]
        body += [*figure_lines(fig, leave_out=("failed_tests",)), ""]
    _replace_section(results, "## GPU check (benchmarks/gpu_check.py)", body)
    runs = steps.get("reproductions", {}).get("figures", {}).get("runs", {})
    done = run_rows(runs, finished_only=True)
    body = [
        f"Run by `python benchmarks/gpu_check.py` on one GPU ({env[-1] if env else 'no lease yet'}), "
        "each run continued across leases with `nclab train --resume`; finished runs only.",
        "",
        *(_table(RUN_HEADER, done) if done else ["No run has finished yet."]),
        "",
        "In progress: "
        + (
            ", ".join(f"{n} {r['epochs_done']} / {r['epochs']}" for n, r in runs.items() if not r["finished"])
            or "none"
        ),
    ]
    dates = sorted({le["date"][:10] for le in data["leases"]})
    _replace_section(reproductions_md, f"## Full-length GPU runs ({', '.join(dates)})", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="output folder (gpu_check.json, .md, .log, runs.tar.gz.*)")
    parser.add_argument("--carry", type=Path, help="an earlier lease's output folder (default: --out)")
    parser.add_argument(
        "--budget", type=float, default=540, help="seconds for the whole command (default 540)"
    )
    parser.add_argument(
        "--carry-mib", type=float, default=60, help="size limit of the lean runs (default 60)"
    )
    parser.add_argument("--smoke", action="store_true", help="every step on the CPU at tiny sizes")
    parser.add_argument("--redo", default="", help="comma-separated steps to run again although completed")
    parser.add_argument(
        "--merge", type=Path, help="merge this output folder's finished figures into the docs"
    )
    args = parser.parse_args()
    if args.merge:
        if not (args.merge / "gpu_check.json").is_file():
            raise SystemExit(f"error: {args.merge} holds no gpu_check.json (give a gpu_check --out folder)")
        data = json.loads((args.merge / "gpu_check.json").read_text())
        if data["smoke"]:
            raise SystemExit(f"error: {args.merge} holds a --smoke run; its CPU figures are not merged")
        merge(data, REPO / "benchmarks/RESULTS.md", REPO / "docs/reproductions.md")
        return
    if args.out is None:
        raise SystemExit("error: give --out DIR (or --merge DIR)")
    if not 0 <= args.carry_mib <= MAX_CARRY_MIB:
        raise SystemExit(f"error: --carry-mib {args.carry_mib:g}: give 0 to {MAX_CARRY_MIB} (8 files back)")
    args.carry = args.carry or args.out
    args.redo = set(filter(None, args.redo.split(",")))
    unknown = args.redo - {s.name for s in STEPS}
    if unknown:
        raise SystemExit(
            f"error: --redo {','.join(sorted(unknown))}: steps are {', '.join(s.name for s in STEPS)}"
        )
    if args.smoke:  # one thread per process (the tiny runs gain nothing from more), set before torch loads
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    run_steps(args)


if __name__ == "__main__":
    main()
