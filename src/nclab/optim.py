"""Optimizers by name over named parameter groups, and per-epoch learning-rate schedules.

Parameter groups (`param_groups`): backbone, classifier weight W, classifier bias b, each with its own
weight decay (Zhu et al. 2021 decay W and b apart from the backbone; the BCE study decays b apart), and
the groups the loss asks for (`Loss.param_groups`: learned centers, no decay, optionally their own lr).

Each optimizer registers with its own options class (its lr default among them: sgd 0.05, adam/adamw 1e-3,
lbfgs 0.1; `state_slots()`: the parameter-sized tensors it keeps, for the disk plan). An optimizer that
needs a closure (`closure = True`: `lbfgs`, torch's L-BFGS over one flat group, Zhu et al. 2021, with the
decays as an explicit `penalty()` in the objective) or cannot take clipped gradients (`clips = False`) or
sharded batches (`shards = False`, distributed.py) says so; step.py asks.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau

from nclab.components.optim import OPTIMIZERS, AdamOptions, AdamWOptions, LbfgsOptions, SgdOptions
from nclab.config import OptimConfig, RunConfig
from nclab.errors import ConfigError
from nclab.models import parameter_groups

__all__ = [
    "OPTIMIZERS",
    "build_optimizer",
    "build_scheduler",
    "lr_factor",
    "param_groups",
    "step_scheduler",
]

Groups = list[dict[str, Any]]


def param_groups(cfg: RunConfig, model: nn.Module, loss_fn: nn.Module) -> Groups:
    """Named groups {name, params, lr, weight_decay}; the lr is scaled by batch/128 if `optim.scale_lr`."""
    opt = cfg.optim
    lr = opt.lr * cfg.train.batch_size / 128 if opt.scale_lr else opt.lr
    own = {
        "backbone": opt.weight_decay_backbone,
        "weight": opt.weight_decay_weight,
        "bias": opt.weight_decay_bias,
    }
    decay = {name: opt.weight_decay if wd is None else wd for name, wd in own.items()}
    groups = [
        {"name": name, "params": params, "lr": lr, "weight_decay": decay[name]}
        for name, params in parameter_groups(model).items()
    ]
    groups += loss_fn.param_groups(lr)
    return [g for g in groups if g["params"]]


def _fused(groups: Groups) -> bool | None:
    """torch's fused kernels (one launch per step, capturable in a CUDA graph) when every parameter is a
    CUDA tensor; None elsewhere (torch's default foreach path, whose CPU numbers the tests pin)."""
    params = [p for g in groups for p in g["params"]]
    return True if params and all(p.is_cuda for p in params) else None


def sgd(cfg: SgdOptions, groups: Groups) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, fused=_fused(groups)
    )


def adam(cfg: AdamOptions, groups: Groups) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas, fused=_fused(groups))


def adamw(cfg: AdamWOptions, groups: Groups) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=_fused(groups))


class LBFGS(torch.optim.LBFGS):
    """torch's L-BFGS (one flat group, no built-in decay); `penalty()` = sum_g wd_g/2 sum_{p in g} ||p||^2
    goes into the closure's objective so the line search sees the regularised loss. Gradient clipping
    would break the line search (`clips = False`), and so would a batch sharded over torchrun's processes
    (`shards = False`)."""

    clips = False
    shards = False
    closure = True  # stepped through a closure that re-evaluates the model (step.TrainStep)

    def __init__(self, cfg: LbfgsOptions, groups: Groups) -> None:
        if len({g["lr"] for g in groups}) > 1:
            raise ConfigError("lbfgs takes one learning rate; unset the loss's own lr (e.g. loss.center_lr)")
        super().__init__(
            [p for g in groups for p in g["params"]],
            lr=groups[0]["lr"],
            history_size=cfg.history_size,
            max_iter=cfg.max_iter,
            line_search_fn=None if cfg.line_search == "none" else cfg.line_search,
        )
        self.decays = [(g["weight_decay"], g["params"]) for g in groups if g["weight_decay"]]

    def penalty(self) -> Tensor | float:
        return sum(wd / 2 * sum(p.square().sum() for p in params) for wd, params in self.decays)


def lbfgs(cfg: LbfgsOptions, groups: Groups) -> torch.optim.Optimizer:
    return LBFGS(cfg, groups)


def build_optimizer(
    cfg: OptimConfig, groups: Groups, clip_grad_norm: float | None = None
) -> torch.optim.Optimizer:
    """The configured optimizer (a base `OptimConfig` is first validated against its own options)."""
    from nclab.config import component_section

    optimizer = OPTIMIZERS.get(cfg.name)(component_section("optim", cfg), groups)
    if clip_grad_norm and not getattr(optimizer, "clips", True):
        raise ConfigError(
            f"train.clip_grad_norm would break {cfg.name}'s line search; unset it or use another optim"
        )
    return optimizer


def lr_factor(cfg: OptimConfig, epochs: int, t: int) -> float:
    """Multiplier of the initial lr for the epoch after t finished epochs (epoch t+1, 1-based).

    Linear warm-up (t+1)/W over the first W epochs, then the schedule over the remaining E' = E - W
    epochs, s = t - W: step gamma^floor(s / step_size); multistep gamma^#{m : s >= max(1, floor(f_m E'))}
    (a milestone never falls before the second epoch: short runs train their first epoch at the full lr);
    cosine m + (1 - m)(1 + cos(pi s / E'))/2, m = min_lr_factor (SGDR without restarts).
    """
    warm = cfg.warmup_epochs
    if t < warm:
        return (t + 1) / warm
    s, span = t - warm, max(epochs - warm, 1)
    if cfg.schedule == "step":
        return cfg.gamma ** (s // cfg.step_size)
    if cfg.schedule == "multistep":
        return cfg.gamma ** sum(s >= max(1, math.floor(f * span)) for f in cfg.milestones)
    if cfg.schedule == "cosine":
        m = cfg.min_lr_factor
        return m + (1 - m) * (1 + math.cos(math.pi * min(s, span) / span)) / 2
    return 1.0


def build_scheduler(
    cfg: OptimConfig, optimizer: torch.optim.Optimizer, epochs: int
) -> LRScheduler | ReduceLROnPlateau:
    """Stepped after every epoch by `step_scheduler`: epoch e (1-based) trains at lr0 * lr_factor(e - 1)."""
    if cfg.schedule == "plateau":
        mode = "max" if cfg.plateau_metric.endswith("acc") else "min"
        return ReduceLROnPlateau(
            optimizer, mode=mode, factor=cfg.gamma, patience=cfg.patience, threshold=cfg.threshold
        )
    return LambdaLR(optimizer, partial(lr_factor, cfg, epochs))


def step_scheduler(
    scheduler: LRScheduler | ReduceLROnPlateau, cfg: OptimConfig, record: dict[str, Any]
) -> None:
    """After an epoch: plateau watches `plateau_metric` in the epoch's record (skipped if unmeasured)."""
    if isinstance(scheduler, ReduceLROnPlateau):
        value = record.get(cfg.plateau_metric)
        if value is not None:
            scheduler.step(value)
    else:
        scheduler.step()
