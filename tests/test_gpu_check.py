"""benchmarks/gpu_check.py: the lean carry, the budget, the smoke run on the CPU, resuming across calls and
merging the figures into the docs."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import gpu_check

SCRIPT = Path(gpu_check.__file__)
FIELDS = {"title", "state", "completed", "wall_s", "estimate_s", "date", "command", "figures", "note"}


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=gpu_check._env(),
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    return proc, time.monotonic() - start


def _fake_run(root: Path, name: str, state: str, state_bytes: int) -> None:
    run = root / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "status.json").write_text(json.dumps({"state": state}))
    (run / "metrics.jsonl").write_text('{"epoch": 1, "nc1": 0.5}\n')
    (run / "events.out.tfevents.1").write_bytes(b"x" * 1000)  # not carried
    (run / "checkpoints" / "epoch_0001.safetensors").write_bytes(b"x" * 1000)  # not carried
    (run / "checkpoints" / "state.safetensors").write_bytes(
        torch.randint(0, 256, (state_bytes,)).byte().numpy()
    )


def test_the_lean_carry_keeps_metrics_and_the_states_that_fit(tmp_path):
    runs, out, back = tmp_path / "runs", tmp_path / "out", tmp_path / "back"
    out.mkdir()
    _fake_run(runs, "done", "finished", 20_000)
    _fake_run(runs, "small", "interrupted", 30_000)
    _fake_run(runs, "big", "running", 90_000)
    carried = gpu_check.pack(runs, out, limit=60_000)
    assert carried == {
        "done": "metrics (finished)",
        "small": "metrics + resume state",
        "big": "metrics only: its resume state (0 MiB) does not fit; starts again",
    }
    gpu_check.restore(out, back)
    kept = sorted(str(p.relative_to(back)) for p in back.rglob("*") if p.is_file())
    lean = ["config.yaml", "metrics.jsonl", "status.json"]
    expected = [f"{n}/{f}" for n in ("big", "done", "small") for f in lean] + [
        "small/checkpoints/state.safetensors"
    ]
    assert kept == sorted(expected)
    state = "checkpoints/state.safetensors"
    assert (back / "small" / state).read_bytes() == (runs / "small" / state).read_bytes()


def test_the_carry_is_split_into_parts_the_device_returns(tmp_path, monkeypatch):
    runs, out, back = tmp_path / "runs", tmp_path / "out", tmp_path / "back"
    out.mkdir()
    _fake_run(runs, "a", "running", 50_000)  # random bytes: gzip cannot shrink them
    monkeypatch.setattr(gpu_check, "PART_BYTES", 20_000)
    gpu_check.pack(runs, out, limit=10**6)
    parts = sorted(p.name for p in out.iterdir())
    assert parts == ["runs.tar.gz.000", "runs.tar.gz.001", "runs.tar.gz.002"]
    gpu_check.restore(out, back)
    assert (back / "a/checkpoints/state.safetensors").stat().st_size == 50_000


def test_epochs_per_second_leaves_out_the_first_epoch():
    samples = [(0.0, 0), (5.0, 1), (6.0, 2), (7.0, 3), (8.0, 3), (9.0, 4)]  # epoch 1 took the warm-up
    assert gpu_check._epochs_per_s(samples) == pytest.approx(2 / 3)
    assert gpu_check._epochs_per_s(samples[:3]) is None


def test_estimates_come_from_the_last_lease():
    step = gpu_check.STEPS[1]
    assert gpu_check.estimate(step, {}, smoke=False) == step.estimate_s
    assert gpu_check.estimate(step, {"wall_s": 40.0, "completed": True}, smoke=False) == 40.0
    assert gpu_check.estimate(step, {"wall_s": 400.0, "completed": False}, smoke=False) == 600.0
    repro = gpu_check.STEPS[-1]
    assert gpu_check.estimate(repro, {"wall_s": 500.0, "completed": False}, smoke=False) == repro.estimate_s


def test_a_forked_command_runs_as_python_would_run_it(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        "import os, sys\n"
        "print(sys.argv[1:], os.getcwd(), sys.path[0], repr(sys.stdin.read()))\n"
        "sys.exit(int(sys.argv[1]))\n"
    )
    proc = gpu_check.Forked([sys.executable, str(script), "3"], tmp_path / "a.out")
    assert proc.wait(timeout=60) == 3 and proc.poll() == 3
    assert (tmp_path / "a.out").read_text() == f"['3'] {gpu_check.REPO} {tmp_path} ''\n"
    proc = gpu_check.Forked([sys.executable, "-m", "json.tool", str(script)], tmp_path / "b.out")
    assert proc.wait(timeout=60) == 1  # not JSON: json.tool's error and exit status
    assert "Expecting value" in (tmp_path / "b.out").read_text()
    script.write_text("import time\ntime.sleep(60)\n")
    proc = gpu_check.Forked([sys.executable, str(script)], tmp_path / "c.out")
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.3)
    gpu_check._kill(proc)  # its process group
    assert proc.wait(timeout=60) == -signal.SIGKILL


def _data() -> dict:
    run = {"command": "python -m nclab train --preset p", "epochs": 2, "epochs_done": 2, "finished": True}
    run |= {"last": {"train_acc": 1.0, "test_acc": 0.9, "nc1": 0.01}, "best_test_acc": 0.91}
    slow = run | {"epochs_done": 1, "finished": False}
    speed = {"device_line": "device H200", "header": ["a", "b"], "rows": [["1", "2"]], "notes": []}
    steps = {
        "env": {"title": "Environment", "completed": True, "state": "done", "figures": {"line": "H200"}},
        "speed_b128": {"title": "Speed", "completed": True, "state": "done", "date": "2026-12-03 10:00 UTC"}
        | {"command": "python benchmarks/epoch.py", "figures": speed},
        "sweep_pack": {"title": "Sweep", "completed": False, "state": "skipped", "note": "skipped: 3 s left"},
        "reproductions": {"title": "Runs", "figures": {"runs": {"p": run, "q": slow}, "concurrency": {}}},
    }
    return {"smoke": False, "leases": [{"date": "2026-12-03 10:00 UTC", "env": "H200", "budget_s": 540}]} | {
        "steps": steps
    }


def test_merge_puts_finished_figures_between_markers_and_replaces_them(tmp_path):
    results, repro = tmp_path / "RESULTS.md", tmp_path / "reproductions.md"
    results.write_text("# Results\n\nearlier text\n")
    repro.write_text("# Reproductions\n")
    gpu_check.merge(_data(), results, repro)
    gpu_check.merge(_data(), results, repro)  # a second merge replaces the section
    text = results.read_text()
    assert text.startswith("# Results\n\nearlier text\n") and text.count(gpu_check.BEGIN) == 1
    assert "    python benchmarks/epoch.py" in text and "| 1 | 2 |" in text
    assert "Sweep: not finished yet (skipped: 3 s left)" in text
    text = repro.read_text()
    assert "| p | `python -m nclab train --preset p` | 2 / 2 | 1 | 0.9 | 0.91 | 0.01 |" in text
    assert "| q |" not in text and "In progress: q 1 / 2" in text


@pytest.mark.slow
@pytest.mark.xdist_group("gpu_check")  # a unit of its own: the suite's longest test starts early (conftest)
def test_smoke_runs_every_step_then_resumes_the_unfinished_runs(tmp_path):
    out = tmp_path / "out"
    proc, _ = _run(tmp_path, "--smoke", "--out", str(out), "--budget", "1500")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((out / "gpu_check.json").read_text())
    assert [s.name for s in gpu_check.STEPS] == list(data["steps"])
    for name, step in data["steps"].items():
        assert set(step) >= FIELDS and step["figures"], name
        assert step["completed"] or name == "reproductions", (name, step["note"])
    assert data["steps"]["resume"]["figures"]["max_abs_diff_resumed"] == 0.0  # CPU: exact
    runs = data["steps"]["reproductions"]["figures"]["runs"]
    assert runs["smoke-short"]["finished"] and not runs["smoke-long"]["finished"]
    first = runs["smoke-long"]["epochs_done"]
    assert first >= 2 and (out / "gpu_check.md").read_text().startswith("# GPU check")

    proc, _ = _run(tmp_path, "--smoke", "--out", str(out), "--budget", "600")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    again = json.loads((out / "gpu_check.json").read_text())
    runs = again["steps"]["reproductions"]["figures"]["runs"]
    assert not runs["smoke-short"]["launched"]  # finished: never re-run
    assert runs["smoke-long"]["resumed_from"] == first and runs["smoke-long"]["epochs_done"] >= first + 2
    assert again["steps"]["cuda_tests"]["date"] == data["steps"]["cuda_tests"]["date"]  # kept, not run again
    assert len(again["leases"]) == 2


@pytest.mark.slow
def test_a_small_budget_stops_launching_steps_in_time(tmp_path):
    out = tmp_path / "out"
    proc, wall = _run(tmp_path, "--smoke", "--out", str(out), "--budget", "8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert wall < 8 + 8  # the final pack and the interpreter's start lie outside the budget
    data = json.loads((out / "gpu_check.json").read_text())
    steps = data["steps"]
    assert steps["env"]["completed"] and list(steps) == [s.name for s in gpu_check.STEPS]
    assert any(s["state"] == "skipped" and s["note"].startswith("skipped: ") for s in steps.values())
    assert all(set(s) >= FIELDS for s in steps.values())
