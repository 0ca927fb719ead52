"""Optimizers by name and per-epoch learning-rate schedules."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from nclab.config import OptimConfig
from nclab.registry import Registry

__all__ = ["OPTIMIZERS", "build_optimizer", "build_scheduler"]

OPTIMIZERS: Registry = Registry("optim")


@OPTIMIZERS.register("sgd")
def sgd(cfg: OptimConfig, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
    )


def build_optimizer(cfg: OptimConfig, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    return OPTIMIZERS.get(cfg.name)(cfg, [p for p in params if p.requires_grad])


def build_scheduler(
    cfg: OptimConfig, optimizer: torch.optim.Optimizer, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once at the end of every epoch: epoch e (1-based) trains at the rate after e-1 steps."""
    sched = torch.optim.lr_scheduler
    if cfg.schedule == "step":
        return sched.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.schedule == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=epochs)
    return sched.LambdaLR(optimizer, lambda _: 1.0)
