"""The epoch loop: train steps, a measured epoch every `measure.every` epochs, checkpoints, status."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor, nn
from torch.utils.tensorboard import SummaryWriter

from nclab import distributed
from nclab.config import RunConfig
from nclab.data import Splits, load_dataset
from nclab.data.loader import DeviceLoader, eval_loader, loaders
from nclab.data.variants import save_labels
from nclab.errors import ConfigError, NclabError, TrainingDiverged
from nclab.losses import Loss, build_loss
from nclab.measure import accuracy, class_hits, measure
from nclab.metrics import table
from nclab.models import Classifier, build_model
from nclab.optim import LBFGS, build_optimizer, build_scheduler, param_groups, step_scheduler
from nclab.runs import Run, checkpoint_epochs

__all__ = ["Parts", "build_parts", "resolve_device", "seed_everything", "train"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise NclabError("train.device=cuda but no CUDA device is visible; use train.device=cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _progress(enabled: bool) -> Progress | nullcontext:
    if not enabled:
        return nullcontext()
    return Progress(
        TextColumn("epoch"),
        MofNCompleteColumn(),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        transient=False,
    )


@dataclass
class Parts:
    """What a run is built from, for training and for `nclab measure` alike."""

    splits: Splits
    model: Classifier
    loss_fn: Loss
    train_batches: DeviceLoader  # shuffled, augmented
    measure_train: DeviceLoader  # un-augmented, eval batch size
    measure_test: DeviceLoader
    val: DeviceLoader | None


def build_parts(cfg: RunConfig, run_dir: Path | None = None) -> Parts:
    """Data (with a run's stored random labels when `run_dir` is given), model and loss on the configured
    device, and the loaders; one ConfigError line for a head-less model with a loss that needs logits."""
    device = distributed.setup(resolve_device(cfg.train.device))
    splits = load_dataset(cfg.data, cfg.seed, run_dir)
    k = splits.num_classes
    model = build_model(cfg, splits.input_shape, k).to(device)
    loss_fn = build_loss(cfg.loss, k, model.feature_dim).to(device)
    if model.head is None and loss_fn.uses_logits:
        raise ConfigError(
            f"head.kind=none leaves no logits for loss={cfg.loss.name}; use a loss on the features "
            "(loss=standalone_center) or head.kind=linear"
        )
    batches = loaders(splits, cfg.train.batch_size, cfg.measure.batch_size, device, cfg.seed, cfg.data)
    val = None
    if splits.val_x is not None:
        val = eval_loader(splits.val_x, splits.val_y, splits, cfg.measure.batch_size, batches[2])
    return Parts(splits, model, loss_fn, *batches, val)


def train(
    cfg: RunConfig, progress: bool = False, on_record: Callable[[dict[str, Any]], None] | None = None
) -> Run:
    """Train one run as configured; returns its run directory (finished, or failed with the reason).
    `on_record` sees each measured epoch's metrics.jsonl record (a sweep reports it to Ray Tune)."""
    seed_everything(cfg.seed)
    parts = build_parts(cfg)
    splits, model, loss_fn, k = parts.splits, parts.model, parts.loss_fn, parts.splits.num_classes
    optimizer = build_optimizer(cfg.optim, param_groups(cfg, model, loss_fn))
    if isinstance(optimizer, LBFGS) and cfg.train.clip_grad_norm:
        raise ConfigError(
            "train.clip_grad_norm would break lbfgs's line search; unset it or use another optim"
        )
    scheduler = build_scheduler(cfg.optim, optimizer, cfg.train.epochs)
    stepped, reduce = model, loss_fn.reduce  # under torchrun: DDP and the global batch's reduction
    if distributed.world() > 1:
        stepped = distributed.wrap(model, loss_fn, optimizer, splits.multilabel)
        reduce = distributed.global_reduce(cfg.loss.reduction)
    train_batches, measure_train, measure_test, val = (
        parts.train_batches,
        parts.measure_train,
        parts.measure_test,
        parts.val,
    )
    save_at = checkpoint_epochs(cfg.train.epochs, cfg.train.save_every)
    run = Run.create(cfg)
    if (
        cfg.data.random_labels and distributed.is_main()
    ):  # measure and resume read them back (data.load_dataset(..., run_dir))
        save_labels(run.path, splits)
    writer = SummaryWriter(log_dir=str(run.path)) if distributed.is_main() else None
    epoch = 0
    try:
        with _progress(progress and distributed.is_main()) as bar:
            task = bar.add_task("train", total=cfg.train.epochs, info="") if bar else None
            for epoch in range(1, cfg.train.epochs + 1):
                lr = optimizer.param_groups[0]["lr"]
                step_loss, step_acc = _train_epoch(
                    stepped, loss_fn, optimizer, train_batches, epoch, cfg.train.clip_grad_norm, reduce
                )
                record = {"epoch": epoch, "lr": lr, "step_loss": step_loss, "step_acc": step_acc}
                save_features = epoch in cfg.measure.save_features_at
                if epoch % cfg.measure.every == 0 or epoch == cfg.train.epochs or save_features:
                    measured = measure(
                        model, loss_fn, measure_train, measure_test, k, multilabel=splits.multilabel,
                        features_per_class=cfg.measure.features_per_class if save_features else False,
                        score_samples=cfg.measure.score_samples,
                    )  # fmt: skip
                    record |= measured.record
                    if val is not None:
                        record["val_acc"] = accuracy(model, val)
                    run.append_metrics(record)
                    if on_record:
                        on_record(record)
                    if measured.scores:
                        run.save_arrays("scores", epoch, measured.scores)
                    if measured.features:
                        run.save_arrays("features", epoch, measured.features)
                    for key, value in record.items():
                        tag = table.tag(key)  # an undeclared key stops the run here, at its first record
                        if writer and key != "epoch" and isinstance(value, int | float):
                            writer.add_scalar(tag, value, epoch)
                    if bar:
                        shown = [k for k in table.keys("progress") if record.get(k) is not None]
                        info = "  ".join(f"{k} {record[k]:.4g}" for k in shown)
                        bar.update(task, info=info)
                step_scheduler(scheduler, cfg.optim, record)
                if epoch in save_at:
                    run.save_checkpoint(epoch, model, loss_fn)
                run.set_status("running", epochs_done=epoch)
                if bar:
                    bar.advance(task)
    except TrainingDiverged as exc:
        run.set_status("failed", epochs_done=epoch - 1, error=str(exc))
        raise
    finally:
        if writer:
            writer.close()
    run.set_status("finished", epochs_done=cfg.train.epochs)
    return run


CHECK_EVERY = 64  # steps between host-side checks of the running loss (one sync per this many steps)


def _train_epoch(
    model: nn.Module,
    loss_fn: Loss,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[tuple[Tensor, Tensor]],
    epoch: int,
    clip_grad_norm: float | None = None,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> tuple[float, float]:
    """One pass of optimizer steps; returns the mean train-mode loss and accuracy seen during the steps
    (before each step). Raises TrainingDiverged as soon as a check sees a non-finite running loss.
    `reduce` turns per-sample losses into the objective (default `loss_fn.reduce`; under torchrun the
    global batch's, distributed.global_reduce); the returned means are over all ranks."""
    model.train()
    device = next(model.parameters()).device
    params = [p for g in optimizer.param_groups for p in g["params"]]
    total = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    n = 0
    for step, (x, y) in enumerate(batches, 1):
        if isinstance(optimizer, LBFGS):
            per_sample, pred = _lbfgs_step(model, loss_fn, optimizer, x, y)
        else:
            logits, h = model(x)
            per_sample = loss_fn.per_sample(logits, h, y)
            optimizer.zero_grad(set_to_none=True)
            (reduce or loss_fn.reduce)(per_sample).backward()
            if clip_grad_norm:
                nn.utils.clip_grad_norm_(params, clip_grad_norm)
            optimizer.step()
            pred = loss_fn.predict(_detached(logits), h.detach())
        total += per_sample.detach().sum().double()  # stays on the device: no sync per step
        correct += class_hits(pred, y)
        n += len(y)
        if step % CHECK_EVERY == 0:
            running, seen = distributed.sum_over_ranks(total, n)
            _check_finite(running / seen, epoch)
    total, correct, n = distributed.sum_over_ranks(total, correct, n)
    _check_finite(total / n, epoch)
    return total / n, correct / n


def _lbfgs_step(
    model: nn.Module, loss_fn: Loss, optimizer: LBFGS, x: Tensor, y: Tensor
) -> tuple[Tensor, Tensor]:
    """One L-BFGS step on the batch (up to optim.max_iter closure evaluations, each a train-mode forward
    as in Zhu et al. 2021); returns the per-sample losses and predictions of the first evaluation."""
    first: list[tuple[Tensor, Tensor]] = []

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        logits, h = model(x)
        per_sample = loss_fn.per_sample(logits, h, y)
        objective = loss_fn.reduce(per_sample) + optimizer.penalty()
        objective.backward()
        if not first:
            first.append((per_sample.detach(), loss_fn.predict(_detached(logits), h.detach())))
        return objective

    optimizer.step(closure)
    return first[0]


def _detached(logits: Tensor | None) -> Tensor | None:
    return None if logits is None else logits.detach()


def _check_finite(mean_loss: float, epoch: int) -> None:
    if not math.isfinite(mean_loss):
        raise TrainingDiverged(
            f"loss became {mean_loss} in epoch {epoch}; the run stopped and keeps its last good checkpoint "
            "(lower optim.lr or set train.clip_grad_norm)"
        )
