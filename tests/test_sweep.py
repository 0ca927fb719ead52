"""`nclab sweep` on a local Ray: trials write run dirs and a table, a killed sweep continues where it stopped,
a failing trial is retried and reported while the others finish, bad sweep files stop before any trial.
The module's tests share one xdist worker (xdist_group), so one local Ray serves them all; trials run one at
a time (one reused actor, which imports torch and nclab once) where concurrency is not what a test shows."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import nclab
from nclab.cli import main
from nclab.runs import Run

# no test here looks at a trial's own end-of-run figures, most of a tiny run's CPU; Gaussian data of the
# digits' size (1,500 x 32), which a fresh trial process loads without importing scikit-learn (1.5 s of CPU)
RUN = {"preset": "demo", "epochs": 3, "model.width": 16, "model.depth": 1, "train.figures": False}
TINY = RUN | {"data": "gaussian", "data.train_per_class": 150, "data.test_per_class": 40}
UFM = {"kind": "ufm", "K": 4, "d": 8, "n": 5, "iterations": 300, "measure.every": 100}
SRC = str(Path(nclab.__file__).parents[1])
pytestmark = pytest.mark.xdist_group("sweep")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module's sweeps (`run_sweep` uses a running Ray as it is); its worker processes
    import nclab from the same sources as this test (PYTHONPATH may be relative). No Ray here (nor the CLI's
    own, which inherits the environment) prestarts idle workers: each trial's actor starts its own."""
    import ray

    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONPATH", os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
        env.setenv("RAY_enable_worker_prestart", "0")
        env.setenv("RAY_prestart_worker_first_driver", "0")
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield
        ray.shutdown()


def test_the_module_runs_as_one_xdist_group(request):
    """Under `make test` (--dist loadgroup) xdist sends the module to one worker, so one local Ray serves it;
    pytest 9.2 stopped reading the node id xdist 3.8 renames to group a test (pytest-xdist#1386), which
    pyproject.toml's pin avoids. Without xdist there is nothing to group."""
    if request.config.getoption("loadgroup", False):
        assert request.node.nodeid.endswith("@sweep"), "xdist_group is ignored: see pytest-xdist#1386"


def sweep_file(tmp_path: Path, **sweep) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"out": str(tmp_path / "out")} | sweep, sort_keys=False))
    return path


def finished(sweep_dir: Path) -> dict[str, bytes]:
    """Finished trials -> their metrics.jsonl bytes."""
    return {
        p.parent.name: (p.parent / "metrics.jsonl").read_bytes()
        for p in sweep_dir.glob("*/status.json")
        if json.loads(p.read_text())["state"] == "finished"
    }


@pytest.mark.slow
def test_sweep_trains_every_combination_then_skips_them(local_ray, tmp_path, capsys):
    path = sweep_file(tmp_path, base=TINY, grid={"loss": ["ce", "mse"], "seed": [0, 1]}, max_concurrent=1)
    assert main(["sweep", str(path)]) == 0
    out_dir = tmp_path / "out"
    names = {"loss=ce,seed=0", "loss=ce,seed=1", "loss=mse,seed=0", "loss=mse,seed=1"}
    done = finished(out_dir)
    assert set(done) == names
    for name in names:
        run = Run(out_dir / name)
        assert [r["epoch"] for r in run.metrics()] == [1, 2, 3]
        cfg = run.config()
        assert (cfg.loss.name, cfg.seed) == (name[5:].split(",")[0], int(name[-1]))
        assert cfg.model.width == 16 and cfg.train.epochs == 3
    table = (out_dir / "compare.md").read_text().splitlines()
    assert len(table) == 2 + 2 and all(any(n in row for row in table) for n in names)  # a row per loss
    assert "loss.name" in table[0] and "seeds" in table[0] and "nc1" in table[0] and "test_acc" in table[0]
    assert (out_dir / "compare.csv").is_file() and (out_dir / "figures" / "grid.png").stat().st_size > 10_000
    assert reported_to_tune(out_dir, "loss=mse,seed=1")
    lines = capsys.readouterr().out.splitlines()  # one line per trial event, no Tune tables
    for name in names:
        events = [
            line.removeprefix(f"trial {name}: ").split()[0] for line in lines if f"trial {name}:" in line
        ]
        assert events == ["started", "epoch", "epoch", "epoch", "finished"]
    assert not any("Trial status" in line or "│" in line for line in lines)

    assert main(["sweep", str(path)]) == 0  # nothing left to do: no trial runs again
    assert "skipped 4 finished trials" in capsys.readouterr().out
    assert finished(out_dir) == done


def reported_to_tune(sweep_dir: Path, name: str) -> bool:
    """The trial reported each measured epoch to Tune, epoch, nc1 and test_acc first (Tune's table shows
    the first four), with the values of the run's metrics.jsonl."""
    lines = (sweep_dir / ".tune" / "trials" / name / "result.json").read_text().splitlines()
    reported = [json.loads(line) for line in lines]
    records = Run(sweep_dir / name).metrics()
    assert len(reported) == len(records)
    for got, record in zip(reported, records, strict=True):
        assert list(got)[:3] == ["epoch", "nc1", "test_acc"]
        assert all(got[k] == v for k, v in record.items() if k in got)
    return True


@pytest.mark.slow
def test_killed_sweep_finishes_only_the_rest(local_ray, tmp_path, capsys):
    """Killed (the process group, Ray included) once the first trial finished and the second measured a few
    epochs: the rerun skips the finished trials, continues the interrupted one and trains the rest."""
    epochs = 15  # polled every 0.05 s, the second trial is killed a few epochs before its last
    base = TINY | {"epochs": epochs}
    path = sweep_file(tmp_path, base=base, grid={"seed": [0, 1, 2]}, max_concurrent=1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nclab", "sweep", str(path)],
        start_new_session=True,  # Ray's processes join this group, killed with it
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    out = tmp_path / "out"
    try:  # kill it once a trial is finished and the next has measured a few epochs
        while time.time() < deadline and proc.poll() is None:
            running = [Run(p) for p in out.glob("seed=*") if p.name not in finished(out)]
            if len(finished(out)) >= 1 and any(len(r.metrics()) >= 3 for r in running):
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = finished(out)
    assert 1 <= len(before) < 3
    interrupted = {
        p.name: ((p / "config.yaml").stat().st_mtime_ns, Run(p).metrics())
        for p in out.glob("seed=*")
        if p.name not in before and (p / "status.json").is_file()
    }
    assert any(len(records) >= 3 for _, records in interrupted.values())

    assert main(["sweep", str(path)]) == 0
    assert f"skipped {len(before)} finished trials" in capsys.readouterr().out
    after = finished(out)
    assert set(after) == {f"seed={s}" for s in range(3)}
    assert {k: after[k] for k in before} == before  # the finished trials were not trained again
    assert all([r["epoch"] for r in Run(out / n).metrics()] == list(range(1, epochs + 1)) for n in after)
    for name, (created, records) in interrupted.items():  # continued with --resume: same dir, same epochs
        assert (out / name / "config.yaml").stat().st_mtime_ns == created
        assert Run(out / name).metrics()[: len(records)] == records


@pytest.mark.slow
def test_failing_trial_is_retried_reported_and_the_others_finish(local_ray, tmp_path, capsys):
    path = sweep_file(tmp_path, base=TINY, grid={"optim.lr": [0.05, 1.0e9]}, retries=1, max_concurrent=1)
    assert main(["sweep", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()  # Ray's own log lines come first
    assert [line for line in err if line.startswith("error:")] == err[-1:]
    assert err[-1].startswith("error: 1 of 2 trials failed")
    assert "optim.lr=1e+09: loss became nan in epoch 1" in err[-1] and "(after 2 attempts" in err[-1]
    assert set(finished(tmp_path / "out")) == {"optim.lr=0.05"}
    assert Run(tmp_path / "out" / "optim.lr=1e+09").status()["state"] == "failed"


@pytest.mark.slow
def test_every_trial_failing_ends_with_the_first_trials_error(local_ray, tmp_path, capsys):
    """Each trial misses its dataset (another directory each): the sweep's error line is the first trial's
    own line and its exit code (2: input), not "no measured runs"."""
    roots = [str(tmp_path / "a"), str(tmp_path / "b")]
    base = RUN | {"data": "mnist", "data.download": False}
    path = sweep_file(tmp_path, base=base, grid={"data.root": roots})
    assert main(["sweep", str(path)]) == 2
    out, err = capsys.readouterr()
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: mnist: files not found or corrupted in {roots[0]}/MNIST/raw")
    assert "all 2 trials failed" in err and "no measured runs" not in err
    for root in roots:  # each trial's event line names its own directory
        assert f"failed: mnist: files not found or corrupted in {root}/MNIST/raw" in out


@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_with_130_and_the_rerun_continues(local_ray, tmp_path, capsys):
    """SIGINT to `nclab sweep` (its own local Ray): exit 130, the unfinished trial `interrupted` with its
    epochs kept; the same command then finishes every trial without training a kept epoch again."""
    # 15 epochs: polled every 0.05 s, the signal reaches the first trial a few epochs before its last
    path = sweep_file(tmp_path, base=TINY | {"epochs": 15}, grid={"seed": [0, 1]}, max_concurrent=1)
    env = os.environ | {"PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    # SIGINT as a terminal's shell leaves it, even where pytest itself runs with it ignored (`pytest &`)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nclab", "sweep", str(path)], start_new_session=True, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    out = tmp_path / "out"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and not any(len(Run(p).metrics()) >= 3 for p in out.glob("seed=*")):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # the driver only, as a terminal's Ctrl-C reaches it
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1].startswith("error: sweep interrupted")
    started = {p.name: Run(p).metrics() for p in out.glob("seed=*")}
    states = {n: Run(out / n).status()["state"] for n in started}
    assert "interrupted" in states.values() and set(states.values()) <= {"interrupted", "finished"}
    assert any(len(records) >= 3 for n, records in started.items() if states[n] == "interrupted")

    assert main(["sweep", str(path)]) == 0
    for name, records in started.items():
        assert Run(out / name).metrics()[: len(records)] == records
    assert set(finished(out)) == {"seed=0", "seed=1"}


@pytest.mark.slow
def test_trial_under_torchrun(local_ray, tmp_path):
    """ranks: 2 runs the trial as one DDP run of two gloo processes; its epochs still reach Tune."""
    base = TINY | {"model.batch_norm": False, "train.device": "cpu"}
    path = sweep_file(tmp_path, base=base, grid={"seed": [0]}, ranks=2, resources={"cpu": 2})
    assert main(["sweep", str(path)]) == 0
    run = Run(tmp_path / "out" / "trial")
    assert run.status()["state"] == "finished" and [r["epoch"] for r in run.metrics()] == [1, 2, 3]
    assert reported_to_tune(tmp_path / "out", "trial")


@pytest.mark.parametrize(
    ("sweep", "fragment"),
    [
        ({"base": TINY, "grid": {"seed": [0]}, "gird": {}}, "gird: unknown key; allowed: base, grid"),
        ({"base": TINY, "grid": {"optim.lrr": [0.1, 0.2]}}, "optim.lrr: unknown key; allowed: name, lr"),
        ({"base": TINY, "grid": {}}, "the grid is empty"),
        ({"base": TINY, "grid": {"seed": []}}, "grid: seed: empty list"),
        ({"base": {"preset": "nope"}, "grid": {"seed": [0, 1]}}, "preset 'nope' is unknown"),
        (
            {"base": TINY, "zip": {"seed": [0, 1], "optim.lr": [0.1]}},
            "zipped lists must have the same length",
        ),
        ({"base": TINY | {"name": "x"}, "grid": {"seed": [0, 1]}}, "name is set by the sweep"),
        ({"base": {"kind": "sim"}, "grid": {"seed": [0, 1]}}, "base.kind: 'sim' is not one of: train, ufm"),
        ({"base": UFM, "grid": {"seed": [0, 1]}, "ranks": 2}, "a kind: ufm sweep takes no ranks > 1"),
        ({"base": UFM, "grid": {"lr": [0.1]}}, "lr: unknown key; allowed: kind, K, d"),
        (
            {"base": TINY, "grid": {"seed": [0, 1]}, "report": {"heatmap": ["model.width", "seed"]}},
            "report.heatmap: model.width does not vary between the trials; give two of: seed",
        ),
    ],
)
def test_bad_sweep_file_is_one_error_before_any_trial(tmp_path, capsys, sweep, fragment):
    assert main(["sweep", str(sweep_file(tmp_path, **sweep))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: sweep file") and fragment in err[0], err
    assert not (tmp_path / "out").exists()


def test_grid_zip_and_random_expand_to_named_trials(tmp_path):
    from nclab.sweep import load_sweep

    path = sweep_file(
        tmp_path,
        base={"preset": "demo"},
        grid={"loss": ["ce", "mse"]},
        zip={"optim.lr": [0.1, 0.01], "optim.step_size": [10, 20]},
        random={"samples": 3, "seed": 1, "keys": {"optim.weight_decay": {"loguniform": [1e-4, 1e-2]}}},
    )
    _, trials, sweep_dir = load_sweep(path)
    assert len(trials) == 2 * 2 * 3 and sweep_dir == tmp_path / "out"
    assert len({t.name for t in trials}) == 12
    first = trials[0]
    assert first.name.startswith("loss=ce,optim.lr=0.1,optim.step_size=10,optim.weight_decay=")
    assert first.config.optim.step_size == 10 and first.config.name == first.name
    decays = {t.config.optim.weight_decay for t in trials}
    assert len(decays) == 3 and all(1e-4 <= d <= 1e-2 for d in decays)
    assert [t.name for t in load_sweep(path)[1]] == [t.name for t in trials]  # seeded: same trials again


def test_bad_resources_is_one_error_before_any_trial(tmp_path, capsys):
    path = sweep_file(tmp_path, base=TINY, grid={"seed": [0, 1]})
    assert main(["sweep", str(path), "--resources", "cpu=1,gpu=1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: --resources gpu: a trial takes a fraction of one GPU or a whole number of GPUs (got 1.5)"
    ]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_ufm_sweep_with_a_heat_map(local_ray, tmp_path, capsys):
    """`base: {kind: ufm}` grids UFM simulations; `report.heatmap` draws final metrics over two keys."""
    from nclab.report.groups import group_runs
    from nclab.report.plots import heatmap_figure
    from nclab.ufm import UFMConfig

    grid = {"d": [4, 8], "lambda_H": [1.0e-3, 1.0e-2]}
    report = {"heatmap": ["d", "lambda_H"], "metrics": ["nc1", "nc2_w"]}
    path = sweep_file(tmp_path, base=UFM, grid=grid, report=report, max_concurrent=1)
    assert main(["sweep", str(path)]) == 0
    out = tmp_path / "out"
    runs = [Run(out / f"d={d},lambda_H={lam:.4g}") for d in (4, 8) for lam in (1e-3, 1e-2)]
    for run in runs:
        assert isinstance(run.config(), UFMConfig) and run.status()["state"] == "finished"
        lines = (out / ".tune" / "trials" / run.name / "result.json").read_text().splitlines()
        assert [json.loads(line)["nc1"] for line in lines] == [r["nc1"] for r in run.metrics()]
    assert (out / "figures" / "heatmap.png").stat().st_size > 10_000
    fig = heatmap_figure(group_runs(runs), "d", "lambda_H", ["nc1"])
    cells = fig.axes[0].collections[0].get_array()
    assert cells[1, 0] == runs[1].metrics()[-1]["nc1"]  # row lambda_H=1e-2, column d=4
    assert len((out / "compare.md").read_text().splitlines()) == 2 + 4
