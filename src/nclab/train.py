"""The epoch loop: train steps, a measured epoch every `measure.every` epochs, checkpoints, status."""

from __future__ import annotations

import math
import random
from contextlib import nullcontext

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch.utils.tensorboard import SummaryWriter

from nclab.config import RunConfig
from nclab.data import load_dataset
from nclab.data.loader import eval_loader, loaders
from nclab.data.variants import save_labels
from nclab.errors import ConfigError, NclabError, TrainingDiverged
from nclab.losses import build_loss
from nclab.measure import accuracy, hits, measure
from nclab.models import build_model
from nclab.optim import build_optimizer, build_scheduler
from nclab.runs import Run, checkpoint_epochs

__all__ = ["resolve_device", "seed_everything", "train"]

PROGRESS_KEYS = ["train_loss", "train_acc", "test_acc", "nc1"]


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


def train(cfg: RunConfig, progress: bool = False) -> Run:
    """Train one run as configured; returns its run directory (finished, or failed with the reason)."""
    seed_everything(cfg.seed)
    device = resolve_device(cfg.train.device)
    splits = load_dataset(cfg.data, cfg.seed)
    k = splits.num_classes
    model = build_model(cfg, splits.input_shape, k).to(device)
    loss_fn = build_loss(cfg.loss, k, model.feature_dim).to(device)
    if model.head is None and getattr(loss_fn, "uses_logits", True):
        raise ConfigError(
            f"head.kind=none leaves no logits for loss={cfg.loss.name}; use a loss on the features "
            "(loss=standalone_center) or head.kind=linear"
        )
    optimizer = build_optimizer(cfg.optim, [*model.parameters(), *loss_fn.parameters()])
    scheduler = build_scheduler(cfg.optim, optimizer, cfg.train.epochs)
    train_batches, measure_train, measure_test = loaders(
        splits, cfg.train.batch_size, cfg.measure.batch_size, device, cfg.seed, cfg.data
    )
    val = None
    if splits.val_x is not None:
        val = eval_loader(splits.val_x, splits.val_y, splits, cfg.measure.batch_size, measure_test)
    save_at = checkpoint_epochs(cfg.train.epochs, cfg.train.save_every)
    run = Run.create(cfg)
    if cfg.data.random_labels:  # measure and resume read them back (data.load_dataset(..., run_dir))
        save_labels(run.path, splits)
    writer = SummaryWriter(log_dir=str(run.path))
    epoch = 0
    try:
        with _progress(progress) as bar:
            task = bar.add_task("train", total=cfg.train.epochs, info="") if bar else None
            for epoch in range(1, cfg.train.epochs + 1):
                lr = optimizer.param_groups[0]["lr"]
                step_loss, step_acc = _train_epoch(model, loss_fn, optimizer, train_batches, epoch)
                scheduler.step()
                last = epoch == cfg.train.epochs
                if epoch % cfg.measure.every == 0 or last:
                    record = {"epoch": epoch, "lr": lr, "step_loss": step_loss, "step_acc": step_acc}
                    record |= measure(model, loss_fn, measure_train, measure_test, k)
                    if val is not None:
                        record["val_acc"] = accuracy(model, val)
                    run.append_metrics(record)
                    for key, value in record.items():
                        if key != "epoch" and value is not None:
                            writer.add_scalar(key, value, epoch)
                    if bar:
                        info = "  ".join(
                            f"{k} {record[k]:.4g}" for k in PROGRESS_KEYS if record[k] is not None
                        )
                        bar.update(task, info=info)
                if epoch in save_at:
                    run.save_checkpoint(epoch, model)
                run.set_status("running", epochs_done=epoch)
                if bar:
                    bar.advance(task)
    except TrainingDiverged as exc:
        run.set_status("failed", epochs_done=epoch - 1, error=str(exc))
        raise
    finally:
        writer.close()
    run.set_status("finished", epochs_done=cfg.train.epochs)
    return run


def _train_epoch(model, loss_fn, optimizer, batches, epoch: int) -> tuple[float, float | None]:
    """One pass of optimizer steps; returns the mean train-mode loss and accuracy seen during the steps
    (accuracy None without a head)."""
    model.train()
    device = next(model.parameters()).device
    total = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    n = 0
    for x, y in batches:
        logits, h = model(x)
        loss = loss_fn(logits, h, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach().double() * len(y)  # stays on the device: no sync per step
        if logits is not None:
            correct += hits(logits, y)
        n += len(y)
    mean = float(total) / n
    if not math.isfinite(mean):
        raise TrainingDiverged(
            f"loss became {mean} in epoch {epoch}; the run stopped and keeps its last good checkpoint "
            "(lower optim.lr or add gradient clipping)"
        )
    return mean, (int(correct) / n if model.head is not None else None)
