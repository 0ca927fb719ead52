"""Optimizers by name: the `OPTIMIZERS` registry, each optimizer's own options (extending
config.OptimConfig, its lr default among them; `state_slots()`: the parameter-sized tensors it keeps) and the
in-tree optimizers declared with their builders (optim.py, imported on first use)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from nclab.components.base import OptimConfig
from nclab.registry import Registry

__all__ = ["OPTIMIZERS"]

OPTIMIZERS: Registry = Registry("optim", OptimConfig)


class SgdOptions(OptimConfig):
    """SGD with momentum; weight decay per group."""

    lr: float = Field(0.05, gt=0, description="initial learning rate")
    momentum: float = Field(0.9, ge=0)
    nesterov: bool = Field(False, description="Nesterov momentum; needs momentum > 0")

    @model_validator(mode="after")
    def _nesterov(self) -> SgdOptions:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0; set optim.momentum=0.9 or optim.nesterov=false")
        return self

    def state_slots(self) -> int:
        """The momentum buffer, if any."""
        return int(self.momentum > 0)


class AdamOptions(OptimConfig):
    """Adam with coupled L2 decay (the 2021 study's `Adam`)."""

    lr: float = Field(1e-3, gt=0, description="initial learning rate")
    betas: tuple[float, float] = Field((0.9, 0.999), description="running-average coefficients")


class LbfgsOptions(OptimConfig):
    """torch's L-BFGS with the decays as an explicit penalty (Zhu et al. 2021: lr 0.1, batch 2048)."""

    lr: float = Field(0.1, gt=0, description="initial step length")
    history_size: int = Field(10, ge=1, description="curvature pairs kept")
    max_iter: int = Field(20, ge=1, description="iterations (closure evaluations) per batch")
    line_search: Literal["strong_wolfe", "none"] = "strong_wolfe"

    def state_slots(self) -> int:
        """2 x history_size curvature directions, the search direction and the last gradient."""
        return 2 * self.history_size + 2


class AdamWOptions(AdamOptions):
    """AdamW, decoupled decay (Loshchilov & Hutter 2019; the BCE study)."""


# (name, builder in nclab.optim, options); the description is the options' docstring
for _name, _builder, _options in [
    ("sgd", "sgd", SgdOptions),
    ("adam", "adam", AdamOptions),
    ("adamw", "adamw", AdamWOptions),
    ("lbfgs", "lbfgs", LbfgsOptions),
]:
    OPTIMIZERS.declare(_name, f"nclab.optim:{_builder}", _options)
