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
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

from nclab import distributed
from nclab.config import RunConfig
from nclab.data import Splits, class_names, load_dataset
from nclab.data.loader import DeviceLoader, eval_loader, loaders
from nclab.data.multilabel import require_single_label_classes
from nclab.data.variants import save_labels
from nclab.errors import ConfigError, NclabError, TrainingDiverged
from nclab.losses import Loss, build_loss
from nclab.measure import accuracy, measure
from nclab.metrics import table
from nclab.models import Classifier, build_model
from nclab.optim import LBFGS, build_optimizer, build_scheduler, param_groups, step_scheduler
from nclab.runs import Run, checkpoint_epochs
from nclab.step import autocast, build_step, prepare_model

__all__ = ["Parts", "build_parts", "resolve_device", "seed_everything", "train"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str, key: str = "train.device") -> torch.device:
    """`name` (auto | cpu | cuda) as a device; `key` is the setting named in the error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise NclabError(f"{key}=cuda but no CUDA device is visible; use {key}=cpu or auto")
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
    ood: DeviceLoader | None = None  # measure.ood: another dataset's test split, preprocessed as this one


def build_parts(cfg: RunConfig, run_dir: Path | None = None) -> Parts:
    """Data (with a run's stored random labels when `run_dir` is given), model and loss on the configured
    device, and the loaders; one error line for a head-less model with a loss that needs logits, or a
    multi-label set with a class lacking single-label samples (before any run directory exists)."""
    device = distributed.setup(resolve_device(cfg.train.device))
    splits = load_dataset(cfg.data, cfg.seed, run_dir)
    if splits.multilabel:
        require_single_label_classes(splits, cfg.data.name)
    k = splits.num_classes
    model = build_model(cfg, splits.input_shape, k).to(device)
    loss_fn = build_loss(cfg.loss, k, model.feature_dim).to(device)
    if model.head is None and loss_fn.uses_logits:
        raise ConfigError(
            f"head.kind=none leaves no logits for loss={cfg.loss.name}; use a loss on the features "
            "(loss=standalone_center) or head.kind=linear"
        )
    batches = loaders(
        splits,
        cfg.train.batch_size,
        cfg.measure.batch_size,
        device,
        cfg.seed,
        cfg.data,
        cfg.train.channels_last,
    )
    val = None
    if splits.val_x is not None:
        val = eval_loader(splits.val_x, splits.val_y, splits, cfg.measure.batch_size, batches[2])
    return Parts(splits, model, loss_fn, *batches, val, ood_loader(cfg, splits, batches[2]))


def ood_loader(cfg: RunConfig, splits: Splits, like: DeviceLoader) -> DeviceLoader | None:
    """The `measure.ood` dataset's test split with this run's normalisation (None when not set)."""
    if cfg.measure.ood is None:
        return None
    ood = load_dataset(cfg.data.model_copy(update={"name": cfg.measure.ood}), cfg.seed)
    if ood.input_shape != splits.input_shape:
        raise ConfigError(
            f"measure.ood={cfg.measure.ood} has inputs {ood.input_shape}, the model takes "
            f"{splits.input_shape}; "
            "choose a dataset of the same shape (or data.rgb32=true for MNIST-like sets)"
        )
    return eval_loader(ood.test_x, ood.test_y, splits, cfg.measure.batch_size, like)


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
    device = next(model.parameters()).device
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    prepare_model(model, cfg.train)
    if cfg.train.compile != "false" and progress:
        print(f"torch.compile (mode {cfg.train.compile}): the first epoch includes the compile time")
    stepped, reduce = model, loss_fn.reduce  # under torchrun: DDP and the global batch's reduction
    if distributed.world() > 1:
        stepped = distributed.wrap(model, loss_fn, optimizer, splits.multilabel)
        reduce = distributed.global_reduce(cfg.loss.reduction)
    step = build_step(stepped, loss_fn, optimizer, cfg.train, reduce)
    precision = autocast(cfg.train.precision, device)
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
    projector = None  # the embedding projector's per-epoch folders go to <run>/projector/
    if writer and cfg.measure.save_features_at:
        projector = SummaryWriter(log_dir=str(run.path / "projector"))
    epoch = 0
    try:
        with _progress(progress and distributed.is_main()) as bar:
            task = bar.add_task("train", total=cfg.train.epochs, info="") if bar else None
            for epoch in range(1, cfg.train.epochs + 1):
                lr = float(optimizer.param_groups[0]["lr"])  # a tensor under train.cuda_graph
                model.train()
                step_loss, step_acc = _train_epoch(step, train_batches, epoch)
                record = {"epoch": epoch, "lr": lr, "step_loss": step_loss, "step_acc": step_acc}
                save_features = epoch in cfg.measure.save_features_at
                if epoch % cfg.measure.every == 0 or epoch == cfg.train.epochs or save_features:
                    with precision:  # the measured epoch in the training precision; sums stay float64
                        measured = measure(
                            model, loss_fn, measure_train, measure_test, k, multilabel=splits.multilabel,
                            features_per_class=cfg.measure.features_per_class if save_features else False,
                            score_samples=cfg.measure.score_samples, layers=cfg.measure.layers,
                            ood_batches=parts.ood, strict=cfg.measure.strict,
                        )  # fmt: skip
                        if val is not None:
                            record["val_acc"] = accuracy(model, val)
                    record |= measured.record
                    run.append_metrics(record)
                    if on_record:
                        on_record(record)
                    if measured.scores:
                        run.save_arrays("scores", epoch, measured.scores)
                    if measured.classes:
                        run.save_arrays("classes", epoch, measured.classes)
                    if measured.features:
                        run.save_arrays("features", epoch, measured.features)
                        if projector:
                            from nclab.report.board import log_features

                            names = class_names(cfg.data, k)
                            log_features(projector, writer, epoch, measured.features, names)
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
        if writer:
            from nclab.report.board import log_figures

            log_figures(writer, run, cfg.train.epochs)
    except TrainingDiverged as exc:
        run.set_status("failed", epochs_done=epoch - 1, error=str(exc))
        raise
    finally:
        if writer:
            writer.close()
        if projector:
            projector.close()
    run.set_status("finished", epochs_done=cfg.train.epochs)
    return run


CHECK_EVERY = 64  # steps between host-side checks of the running loss (one sync per this many steps)


def _train_epoch(
    step: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
    batches: Iterable[tuple[Tensor, Tensor]],
    epoch: int,
) -> tuple[float, float]:
    """One pass of optimizer steps (`nclab.step`); returns the mean train-mode loss and accuracy seen
    during the steps (before each step), over all ranks under torchrun. Raises TrainingDiverged as soon as
    a check sees a non-finite running loss."""
    total = correct = None
    n = 0
    for i, (x, y) in enumerate(batches, 1):
        loss_sum, hits = step(x, y)
        total = loss_sum if total is None else total + loss_sum  # stays on the device: no sync per step
        correct = hits if correct is None else correct + hits
        n += len(y)
        if i % CHECK_EVERY == 0:
            running, seen = distributed.sum_over_ranks(total, n)
            _check_finite(running / seen, epoch)
    total, correct, n = distributed.sum_over_ranks(total, correct, n)
    _check_finite(total / n, epoch)
    return total / n, correct / n


def _check_finite(mean_loss: float, epoch: int) -> None:
    if not math.isfinite(mean_loss):
        raise TrainingDiverged(
            f"loss became {mean_loss} in epoch {epoch}; the run stopped and keeps its last good checkpoint "
            "(lower optim.lr or set train.clip_grad_norm)"
        )
