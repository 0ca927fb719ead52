"""The trials of a sweep (sweep.py) as Ray Tune trials: each trains its run directory, or continues it from
its resume state, and reports every measured epoch to Tune. The sweep prints one line per trial event
(started, measured epoch, finished, failed) unless `--verbose` asks for Tune's own tables; Ctrl-C stops it
like `nclab train` (exit 130, unfinished trials `interrupted`, the same command continues them)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from nclab.config import RunConfig, kind_of, validate_any
from nclab.errors import Interrupted, NclabError
from nclab.files import write_atomic
from nclab.runs import Run
from nclab.sweep import Failure, Resources, Sweep, SweepResult, Trial

__all__ = ["TUNE_DIR", "run_sweep"]

TUNE_DIR = ".tune"  # Tune's experiment state inside the sweep directory
REPORT_FIRST = ["nc1", "test_acc", "train_acc", "train_loss"]  # the Tune table shows the first four


def _state(run_dir: Path) -> str:
    """`new`, `finished`, or `interrupted` (a run dir left by a killed or failed attempt)."""
    if not (run_dir / "status.json").is_file():
        return "new"
    return "finished" if Run(run_dir).status()["state"] == "finished" else "interrupted"


def _report_record(record: dict[str, Any]) -> None:
    """One measured epoch's summary keys (metrics.table) to Tune (metrics.jsonl has them all); nc1 and
    test_acc first, so Tune's progress table (the first four numbers) shows them."""
    from ray import tune

    from nclab.metrics import table

    keys = ["epoch", *REPORT_FIRST, *table.keys("summary")]
    tune.report({k: record[k] for k in keys if isinstance(record.get(k), int | float)})


def _torchrun(cfg: RunConfig, ranks: int, continuing: bool) -> None:
    """The trial as `torchrun --nproc-per-node ranks -m nclab train` (on the GPUs Ray gave the trial, which
    CUDA_VISIBLE_DEVICES names), reporting the run's new metrics.jsonl lines to Tune as they appear."""
    run_dir = Path(cfg.out) / cfg.name
    config = run_dir.parent / TUNE_DIR / "configs" / f"{cfg.name}.yaml"
    write_atomic(config, cfg.to_yaml())
    what = ["--resume", str(run_dir)] if continuing else [str(config)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
    proc = subprocess.Popen(
        [*cmd, "-m", "nclab", "train", *what, "--quiet"], stderr=subprocess.PIPE, text=True
    )
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)
    reader.start()
    seen = len(Run(run_dir).metrics()) if continuing else 0
    while True:
        with contextlib.suppress(subprocess.TimeoutExpired):  # new records each second; the end at once
            proc.wait(timeout=1.0)
        finished = proc.returncode is not None
        records = Run(run_dir).metrics() if run_dir.is_dir() else []
        for record in records[seen:]:
            _report_record(record)
        seen = len(records)
        if finished:
            break
    reader.join()
    if proc.returncode:
        lines = [line.strip() for line in errors if line.startswith("error: ")]
        raise NclabError(lines[-1][7:] if lines else f"torchrun exited with {proc.returncode}: {errors[-1:]}")


def _trial(params: dict[str, Any], configs: dict[str, dict[str, Any]], ranks: int = 1) -> None:
    """A Tune trial: train the run `params["trial"]`, or continue it from its resume state (an earlier
    attempt was killed, preempted or failed), reporting each measured epoch."""
    from nclab.train import resume

    cfg = validate_any(configs[params["trial"]])
    kind = kind_of(cfg)
    run_dir = Path(cfg.out) / cfg.name
    state = _state(run_dir)
    if state == "interrupted" and kind.resumable:
        status, total = Run(run_dir).status(), kind.total(cfg)
        if status["epochs_done"] >= total:  # stopped after its last epoch: only the status left
            Run(run_dir).set_status("finished", status["epochs_done"], total)
            state = "finished"
    if state == "finished":  # finished while the sweep was being killed: nothing to redo
        _report_record(Run(run_dir).metrics()[-1])
        return
    if run_dir.exists() and (state == "new" or not kind.resumable):  # nothing to continue: start again
        shutil.rmtree(run_dir)
        state = "new"
    try:
        if ranks > 1:
            _torchrun(cfg, ranks, continuing=state == "interrupted")
        elif state == "interrupted":
            resume(run_dir, on_record=_report_record)
        else:
            kind.runner()(cfg, on_record=_report_record)
    except BaseException as exc:  # stopped by Tune (SystemExit) or failed: the status says which
        stopped = isinstance(exc, SystemExit | KeyboardInterrupt)
        if (run_dir / "status.json").is_file() and (stopped or Run(run_dir).status()["state"] != "failed"):
            _mark(run_dir, "interrupted" if stopped else "failed", str(exc))
        if not stopped:  # the driver's event line (Tune's callbacks do not see the exception)
            with contextlib.suppress(NclabError, OSError):  # a full disk must not hide the trial's own error
                write_atomic(_error_path(run_dir.parent, cfg.name), _error(exc)[0] + "\n")
        raise


def _error_path(sweep_dir: Path, name: str) -> Path:
    """Where a trial leaves its last error line for the sweep's event lines."""
    folder = sweep_dir / TUNE_DIR / "errors"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def _mark(run_dir: Path, state: str, error: str) -> None:
    run = Run(run_dir)
    run.set_status(state, run.status()["epochs_done"], error=error)


def _error(error: BaseException | None) -> tuple[str, int]:
    """(the user-facing line, the exit code) of a trial's error (Ray wraps the trial's exception)."""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    return (text[-1] if text else type(cause).__name__), getattr(cause, "exit_code", 1)


def run_sweep(
    sweep: Sweep,
    trials: list[Trial],
    sweep_dir: Path,
    address: str | None = None,
    resources: Resources | None = None,
    retries: int | None = None,
    verbose: int = 0,
) -> SweepResult:
    """Run the trials not yet finished as Ray Tune trials (a local Ray by default, the cluster at `address`
    otherwise); a failed trial is retried `retries` times, then reported while the others finish. Ctrl-C
    raises Interrupted (exit 130) with the unfinished trials' run dirs marked `interrupted`."""
    skipped = [t.name for t in trials if _state(sweep_dir / t.name) == "finished"]
    pending = [t for t in trials if t.name not in skipped]
    failed: dict[str, Failure] = {}
    if pending:
        failed = _tune(sweep, pending, sweep_dir, address, resources or sweep.resources, retries, verbose)
    return SweepResult(sweep_dir, trials, skipped, failed)


def _start_ray(address: str | None, verbose: int) -> bool:
    """Start (or join, with `address`) Ray unless it runs already; whether this call started it."""
    import ray

    if ray.is_initialized():
        return False
    try:
        ray.init(
            address=address or "local", include_dashboard=False, log_to_driver=verbose > 1,
            logging_level=logging.INFO if verbose else logging.WARNING,
        )  # fmt: skip
    except ConnectionError as exc:
        raise NclabError(
            f"no Ray cluster answers at {address} ({exc}); check the address (`ray status` on the head "
            "node), and with token authentication set RAY_AUTH_MODE=token and the cluster's token"
        ) from None
    return True


def _callbacks(sweep_dir: Path, quiet: bool) -> Any:
    """A Tune callback that counts each trial's failed attempts and, unless `quiet`, prints one line per
    trial event."""
    from ray import tune

    from nclab.output import progress_text

    class Events(tune.Callback):
        def __init__(self) -> None:
            self.attempts: Counter[str] = Counter()

        def say(self, trial, text: str) -> None:
            if not quiet:
                print(f"trial {trial.config['trial']}: {text}", flush=True)

        def on_trial_start(self, iteration, trials, trial, **info) -> None:
            self.say(trial, "started")

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            self.say(trial, f"epoch {result.get('epoch')}  {progress_text(result)}")

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self.say(trial, "finished")

        def on_trial_recover(self, iteration, trials, trial, **info) -> None:
            self.attempts[trial.config["trial"]] += 1
            self.say(trial, f"failed, retrying: {self.status_error(trial)}")

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self.attempts[trial.config["trial"]] += 1
            self.say(trial, f"failed: {self.status_error(trial)}")

        @staticmethod
        def status_error(trial) -> str:
            path = _error_path(sweep_dir, trial.config["trial"])
            return path.read_text().strip() if path.is_file() else f"see {trial.error_file}"

    return Events()


def _tune(
    sweep: Sweep,
    pending: list[Trial],
    sweep_dir: Path,
    address: str | None,
    resources: Resources,
    retries: int | None,
    verbose: int,
) -> dict[str, Failure]:
    import ray
    from ray import tune

    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # trials see the paths the user gave
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C raises KeyboardInterrupt: stop, exit 130
    os.environ["RAY_AIR_NEW_OUTPUT"] = "1" if verbose else "0"  # the old engine is silent at verbose=0
    started = _start_ray(address, verbose)
    events = _callbacks(sweep_dir, quiet=verbose > 0)
    interrupted = False
    try:
        configs = {t.name: t.config.model_dump() for t in pending}
        trainable = tune.with_resources(
            tune.with_parameters(_trial, configs=configs, ranks=sweep.ranks),
            {"cpu": resources.cpu, "gpu": resources.gpu},
        )
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search([t.name for t in pending])},
            tune_config=tune.TuneConfig(
                max_concurrent_trials=sweep.max_concurrent,
                reuse_actors=True,  # a trial's worker keeps torch and nclab imported for the next trial
                trial_name_creator=_tune_name,
                trial_dirname_creator=_tune_name,
            ),
            run_config=tune.RunConfig(
                name="trials",
                storage_path=str(sweep_dir / TUNE_DIR),
                failure_config=tune.FailureConfig(max_failures=sweep.retries if retries is None else retries),
                verbose=verbose,
                callbacks=[events],
            ),
        )
        tune_log = logging.getLogger("ray.tune")
        level = tune_log.level
        if verbose < 2:  # the sweep reports failures itself; tracebacks stay in each trial's error.txt
            tune_log.setLevel(logging.CRITICAL)
        try:
            results = tuner.fit()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            tune_log.setLevel(level)
    finally:
        if started:
            ray.shutdown()
    if interrupted:
        _interrupted(pending, sweep_dir)
    failed = {}
    for r in results:
        if r.error is not None:
            name = r.config["trial"]
            message, code = _error(r.error)
            failed[name] = Failure(message, code, events.attempts[name])
    return {t.name: failed[t.name] for t in pending if t.name in failed}  # in trial order


def _interrupted(pending: list[Trial], sweep_dir: Path) -> None:
    """After Ctrl-C (Ray stopped): unfinished trials are `interrupted`; raise Interrupted (exit 130)."""
    for trial in pending:
        run_dir = sweep_dir / trial.name
        if (run_dir / "status.json").is_file() and Run(run_dir).status()["state"] == "running":
            _mark(run_dir, "interrupted", "the sweep was interrupted (Ctrl-C)")
    raise Interrupted(
        signal.SIGINT,
        "sweep interrupted; finished epochs are kept in each trial's run dir; rerun the same command to "
        "continue the unfinished trials",
    )


def _tune_name(trial) -> str:
    return trial.config["trial"]
