"""The epoch loop: train steps, a measured epoch every `measure.every` epochs, sparse analysis checkpoints,
the resume state after every epoch, status. `resume` continues a run from its newest resume state, so a
killed run ends with the same files and numbers as an uninterrupted one (docs/architecture.md, "Resume")."""

from __future__ import annotations

import contextlib
import math
import random
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from nclab import distributed
from nclab.config import RunConfig, kind_of, stored_tree, validate
from nclab.data import class_names
from nclab.data.text import TokenSplits
from nclab.errors import ConfigError, Interrupted, NclabError, RunError, TrainingDiverged
from nclab.files import parse_yaml
from nclab.measure import Measurement, accuracy, measure, resolved_weighting, settings
from nclab.metrics import table
from nclab.optim import build_optimizer, build_scheduler, param_groups, step_scheduler
from nclab.output import EpochLog
from nclab.parts import Parts, build_parts, resolve_device
from nclab.report import groups
from nclab.report.board import Described, log_features, log_figures
from nclab.runs import Run, checkpoint_epochs, load
from nclab.state import Progress as TrainProgress
from nclab.state import RNGState, Stateful
from nclab.step import TrainStep, autocast, build_step, prepare_model

__all__ = ["DiskPlan", "disk_plan", "resume", "seed_everything", "train"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class DiskPlan:
    """The checkpoint files of a run under its policy: analysis checkpoints (model + loss tensors) at
    `epochs`, and one resume state (those plus the optimizer's buffers), written beside its old copy."""

    epochs: list[int]
    checkpoint_bytes: int
    state_bytes: int

    @property
    def total(self) -> int:
        return len(self.epochs) * self.checkpoint_bytes + 2 * self.state_bytes

    def describe(self) -> str:
        shown = ", ".join(map(str, self.epochs[:12])) + (", ..." if len(self.epochs) > 12 else "")
        return (
            f"checkpoints: {len(self.epochs)} analysis ({self.checkpoint_bytes / 1e6:.3g} MB each; epochs "
            f"{shown}) + the resume state ({self.state_bytes / 1e6:.3g} MB): "
            f"at most {self.total / 1e9:.3g} GB"
        )


def disk_plan(cfg: RunConfig, model: nn.Module, loss_fn: nn.Module) -> DiskPlan:
    """The checkpoint disk use of `cfg`'s policy, from tensor sizes alone (works on the meta device)."""
    tensors = [*model.state_dict().values(), *loss_fn.state_dict().values()]
    trainable = [p for p in [*model.parameters(), *loss_fn.parameters()] if p.requires_grad]
    checkpoint = sum(t.nbytes for t in tensors)
    state = checkpoint + cfg.optim.state_slots() * sum(p.nbytes for p in trainable)
    return DiskPlan(sorted(checkpoint_epochs(cfg.train.epochs, cfg.train.save_every)), checkpoint, state)


def _optimization(
    cfg: RunConfig, parts: Parts
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | Any]:
    groups = param_groups(cfg, parts.model, parts.loss_fn)
    optimizer = build_optimizer(cfg.optim, groups, cfg.train.clip_grad_norm)
    limit = torch.finfo(torch.float32).max  # a step computes lr * grad etc. in the parameters' float32
    for group in optimizer.param_groups:
        for key, value in group.items():
            if any(
                isinstance(v, float) and abs(v) > limit
                for v in (value if isinstance(value, tuple) else [value])
            ):
                raise ConfigError(
                    f"optim.{key}={value}: beyond float32's range (|x| <= {limit:.4g}), it can never step"
                )
    return optimizer, build_scheduler(cfg.optim, optimizer, cfg.train.epochs)


def _step(cfg: RunConfig, parts: Parts, optimizer: torch.optim.Optimizer, progress: bool) -> TrainStep:
    """The train step of `train.*` (nclab.step): channels_last / compile in place, DDP under torchrun."""
    model, loss_fn = parts.model, parts.loss_fn
    if next(model.parameters()).device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    prepare_model(model, cfg.train)
    if cfg.train.compile != "false" and progress and distributed.is_main():
        print(f"torch.compile (mode {cfg.train.compile}): the first epoch includes the compile time")
    stepped, reduce = model, loss_fn.reduce  # under torchrun: DDP and the global batch's reduction
    if distributed.world() > 1:
        stepped = distributed.wrap(model, loss_fn, optimizer, parts.splits.multilabel)
        reduce = distributed.global_reduce(cfg.loss.reduction)
    return build_step(stepped, loss_fn, optimizer, cfg.train, reduce)


def _stateful(
    parts: Parts, optimizer: Any, scheduler: Any, progress: TrainProgress, step: TrainStep
) -> dict[str, Stateful]:
    """Every part whose state a resumed run needs, by name (one entry per component)."""
    return {
        "step": step,  # fp16's GradScaler
        "model": parts.model,
        "loss": parts.loss_fn,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "rng": RNGState(),
        "loader": parts.train_batches,
        "progress": progress,
    }


OnRecord = Callable[[dict[str, Any]], None]


def train(cfg: RunConfig, progress: bool = False, on_record: OnRecord | None = None) -> Run:
    """Train one run as configured into a new run directory (refused if it exists); returns it finished.
    Raises TrainingDiverged / Interrupted / WriteError with the run dir marked failed or interrupted.
    `on_record` sees each measured epoch's metrics.jsonl record (a sweep reports it to Ray Tune)."""
    seed_everything(cfg.seed)
    parts = build_parts(cfg)
    optimizer, scheduler = _optimization(cfg, parts)
    step = _step(cfg, parts, optimizer, progress)
    plan = disk_plan(cfg, parts.model, parts.loss_fn)
    run = Run.create(cfg)
    with run.lock():
        if cfg.data.random_labels:  # measure and resume read them back (Run.labels)
            run.save_labels(parts.splits.train_y)
        if progress and distributed.is_main():
            print(plan.describe())
            if isinstance(parts.splits, TokenSplits):  # the language-model default differs from SPEC.md's
                weighting = resolved_weighting(cfg.measure.weighting, True)
                print(f"measure.weighting={weighting} (class: every next-token class weighs the same, the")
                print("language-model default of Wu & Papyan 2024; sample: every token weighs the same)")
        _fit(cfg, run, parts, optimizer, scheduler, step, TrainProgress(), progress, on_record)
    return run


def resume(
    path: str | Path, epochs: int | None = None, progress: bool = False, on_record: OnRecord | None = None
) -> Run:
    """Continue the run in `path` from its newest resume state (from the start if it has none) to its
    configured epochs, or to `epochs` (extend a finished run: config.yaml is updated, LambdaLR schedules are
    re-planned over the new total); a run killed after its last epoch does its end-of-run work. The state is
    checked against the run's files and config.yaml first (one RunError naming the difference, nothing
    written). CPU results equal those of an uninterrupted run exactly."""
    run = load(path)
    stored = run.config()
    if not kind_of(stored).resumable:
        raise RunError(f"{run.path} is an `nclab {stored.kind}` run, which keeps no resume state; rerun it")
    distributed.setup(resolve_device(stored.train.device))  # under torchrun: join first, so only rank 0 locks
    with run.lock():
        done, saved, saved_yaml = run.read_state()
        planned = _check_config(run, stored, saved_yaml)
        cfg = stored
        if epochs is not None:
            cfg = validate(
                cfg.model_dump() | {"train": cfg.train.model_dump() | {"epochs": epochs}}, RunConfig
            )
        if done > cfg.train.epochs or (done == cfg.train.epochs and run.status().get("state") == "finished"):
            more = f"epochs={epochs} is not more than the {done} epochs done" if epochs else "it is finished"
            raise RunError(
                f"{run.path} has trained {done} of {cfg.train.epochs} epochs: nothing to resume ({more}); "
                f"extend it with `nclab train --resume {run.path} epochs=N` with N > {done}"
            )
        seed_everything(cfg.seed)
        parts = build_parts(cfg, run.labels())
        optimizer, scheduler = _optimization(cfg, parts)
        step = _step(cfg, parts, optimizer, progress)
        state = TrainProgress()
        if done:
            run.load_parts(_stateful(parts, optimizer, scheduler, state, step), saved)
            if cfg.train.epochs != planned and hasattr(scheduler, "lr_lambdas"):
                for group, base, fn in zip(  # the lr of the next epoch under the new total
                    optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
                ):
                    group["lr"] = base * fn(scheduler.last_epoch)
                scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
        if cfg.train.epochs != stored.train.epochs:
            run.write_config(cfg)
        run.rewind(done)
        if cfg.data.random_labels and run.labels() is None:
            run.save_labels(parts.splits.train_y)
        if progress and distributed.is_main():
            print(f"resuming {run.path} after epoch {done} of {cfg.train.epochs}")
            print(disk_plan(cfg, parts.model, parts.loss_fn).describe())
        _fit(cfg, run, parts, optimizer, scheduler, step, state, progress, on_record)
    return run


def _check_config(run: Run, cfg: RunConfig, saved_yaml: str | None) -> int:
    """The epochs the resume state was planned for; RunError naming the keys where config.yaml differs
    from the config the state was saved with (only train.epochs may differ: `epochs=N` extends a run)."""
    if saved_yaml is None:  # no state yet, or one written before states kept their config
        return cfg.train.epochs
    saved = validate(stored_tree(parse_yaml(saved_yaml)), RunConfig)
    now, then = groups.settings(cfg), groups.settings(saved)
    changed = [k for k in groups.differing([now, then]) if k != "train.epochs"]
    if changed:
        shown = ", ".join(f"{k}={now.get(k)!r} (saved {then.get(k)!r})" for k in changed[:4])
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        raise RunError(
            f"{run.path}/config.yaml differs from the config its resume state was saved with: {shown}{more}; "
            "restore it (--resume changes only epochs=N), nothing was written"
        )
    return saved.train.epochs


class _Interrupts:
    """SIGINT/SIGTERM raise Interrupted at once, except inside `held()` (an epoch's writes), where they wait
    for the block to finish; so the run dir always holds complete epochs. Main thread only (signals)."""

    def __enter__(self) -> _Interrupts:
        self.pending: int | None = None
        self.holding = False
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.holding:
            self.pending = signum
        else:
            raise Interrupted(signum)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending is not None:
            raise Interrupted(self.pending)


def _fit(
    cfg: RunConfig,
    run: Run,
    parts: Parts,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    step: TrainStep,
    state: TrainProgress,
    progress: bool,
    on_record: OnRecord | None = None,
) -> None:
    """Epochs state.epoch + 1 .. cfg.train.epochs. After each: the metrics line (measured epochs), arrays,
    the scheduler step, an analysis checkpoint (policy epochs), the resume state, status: one held block.
    Under torchrun every rank trains (DDP, the global batch's reduction) and rank 0 writes (runs.Run)."""
    model, loss_fn, k = parts.model, parts.loss_fn, parts.splits.num_classes
    precision = autocast(cfg.train.precision, next(model.parameters()).device)
    stateful = _stateful(parts, optimizer, scheduler, state, step)
    save_at = checkpoint_epochs(cfg.train.epochs, cfg.train.save_every)
    total, saved = cfg.train.epochs, state.epoch
    purge = saved + 1 if saved else None  # hides the events a killed run wrote after its resume state
    writer = projector = None  # the embedding projector's per-epoch folders go to <run>/projector/
    names = class_names(cfg.data, k) if cfg.measure.save_features_at else []
    try:
        writer = run.tensorboard(purge_step=purge)
        writer = writer and Described(writer)  # each scalar tagged with its metric's description
        if writer and names:
            projector = run.tensorboard(purge_step=purge, folder="projector")
        with EpochLog(total, saved, progress and distributed.is_main()) as log, _Interrupts() as interrupts:
            for epoch in range(saved + 1, total + 1):
                lr = float(optimizer.param_groups[0]["lr"])  # a tensor under train.cuda_graph
                model.train()
                step_loss, step_acc = _train_epoch(step, parts.train_batches, epoch)
                record = {"epoch": epoch, "lr": lr, "step_loss": step_loss, "step_acc": step_acc}
                measured = _measured(cfg, parts, epoch, precision)
                if measured is not None:
                    record |= measured.record
                with interrupts.held():
                    if measured is not None:
                        run.append_metrics(record, table.tag, writer)
                        if on_record:
                            on_record(record)
                        run.save_measured(epoch, measured.arrays)
                        if measured.features and projector:
                            log_features(projector, writer, epoch, measured.features, names)
                    step_scheduler(scheduler, cfg.optim, record)
                    state.update(epoch, record if measured is not None else None)
                    if epoch in save_at:
                        run.save_checkpoint(epoch, model, loss_fn)
                    run.save_state(stateful, epoch, cfg)
                    saved = epoch
                    run.set_status("running", epochs_done=epoch, epochs=total)
                log.epoch(epoch, record if measured is not None else None)
            # resumable: a kill here leaves the state of the last epoch
            _finish(run, writer, total, cfg.train.figures)
    except TrainingDiverged as exc:
        kept = (
            f"kept: epochs 1-{saved} (metrics.jsonl, their checkpoints, the resume state of epoch {saved})"
            if saved
            else "no epoch finished, so only config.yaml and status.json are kept"
        )
        message = f"{exc}; {kept}"
        _mark(run, "failed", saved, total, message)
        raise TrainingDiverged(message) from None
    except Interrupted as exc:
        when = "during the end-of-run figures" if saved == total else f"after {saved} of {total} epochs"
        message = (
            f"interrupted by {signal.Signals(exc.signum).name} {when}; "
            f"continue with `nclab train --resume {run.path}`"
        )
        _mark(run, "interrupted", saved, total, message)
        raise Interrupted(exc.signum, message) from None
    except BaseException as exc:  # a write failure (disk full, ...) or a bug: the status says so
        _mark(run, "failed", saved, total, str(exc) if isinstance(exc, NclabError) else type(exc).__name__)
        raise
    finally:
        for board in (writer, projector):
            if board:
                with contextlib.suppress(NclabError):  # a failed close leaves no state behind
                    board.close()


def _measured(cfg: RunConfig, parts: Parts, epoch: int, precision: Any) -> Measurement | None:
    """The measured epoch (every `measure.every` epochs, the last, and where features are saved) in the
    training precision (sums stay float64), its record led by `val_acc` where a validation split exists;
    None on other epochs."""
    save_features = epoch in cfg.measure.save_features_at
    if not (epoch % cfg.measure.every == 0 or epoch == cfg.train.epochs or save_features):
        return None
    splits = parts.splits
    with precision:
        measured = measure(
            parts.model, parts.loss_fn, parts.measure_train, parts.measure_test,
            settings(cfg.measure, splits.num_classes, splits.multilabel, save_features, splits), parts.ood,
        )  # fmt: skip
        if parts.val is not None:
            measured.record = {"val_acc": accuracy(parts.model, parts.loss_fn, parts.val)} | measured.record
    return measured


def _finish(run: Run, writer: Any, total: int, figures: bool) -> None:
    """The end-of-run work after the last epoch's state: with `figures` (train.figures), figures/nc.png and
    TensorBoard's figures (the same nc.png, drawn once); TensorBoard's events on disk; then status finished.
    `resume` of a run killed here does only this."""
    if distributed.is_main() and figures:
        from nclab.report.plots import plot  # the figure stack loads when the run draws, not with training

        nc_png = plot([run])[0]
        if writer:
            log_figures(writer, run, total, nc_png)
    if writer:
        writer.flush()
    run.set_status("finished", epochs_done=total, epochs=total)


def _mark(run: Run, state: str, saved: int, total: int, message: str) -> None:
    """Best effort: a full disk may refuse even status.json, and the original error is the one to report."""
    with contextlib.suppress(NclabError):
        run.set_status(state, epochs_done=saved, epochs=total, error=message)


CHECK_EVERY = 64  # steps between host-side checks of the running loss (one sync per this many steps)


def _train_epoch(
    step: Callable[[Tensor, Tensor], tuple[Tensor, Tensor | None]],
    batches: Iterable[tuple[Tensor, Tensor]],
    epoch: int,
) -> tuple[float, float | None]:
    """One pass of optimizer steps (`nclab.step`); returns the mean train-mode loss and accuracy seen
    during the steps (before each step), over all ranks under torchrun. Raises TrainingDiverged as soon as
    a check sees a non-finite running loss."""
    total = correct = None
    n = 0
    for i, (x, y) in enumerate(batches, 1):
        loss_sum, hits = step(x, y)
        total = loss_sum if total is None else total + loss_sum  # stays on the device: no sync per step
        if hits is not None:  # None: the loss has no prediction rule (step_acc null)
            correct = hits if correct is None else correct + hits
        n += len(y)
        if i % CHECK_EVERY == 0:
            running, seen = distributed.sum_over_ranks(total, n)
            _check_finite(running / seen, epoch)
    total, n, *correct = distributed.sum_over_ranks(total, n, *([] if correct is None else [correct]))
    _check_finite(total / n, epoch)
    return total / n, correct[0] / n if correct else None


def _check_finite(mean_loss: float, epoch: int) -> None:
    if not math.isfinite(mean_loss):
        raise TrainingDiverged(
            f"loss became {mean_loss} in epoch {epoch}; the run stopped (lower optim.lr or set "
            "train.clip_grad_norm)"
        )
