"""`nclab ufm`'s config (`UFMConfig`, `kind: ufm` in config.yaml), registered as a run kind: no resume state,
nothing to re-measure, `iterations` as its progress total."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, SerializeAsAny, model_validator

from nclab.config import (
    LossConfig,
    RunKind,
    Section,
    component_validator,
    plugins_field,
    register_kind,
    resolve,
)


class UFMOptim(Section):
    name: Literal["gd", "momentum", "lbfgs"] = Field(
        "lbfgs", description="full-batch gradient descent, heavy-ball momentum, or L-BFGS (strong Wolfe)"
    )
    lr: float = Field(1.0, gt=0, description="step size (lbfgs: the line search's first trial step)")
    momentum: float = Field(0.9, ge=0, lt=1, description="momentum: heavy-ball coefficient")
    history_size: int = Field(10, ge=1, description="lbfgs: curvature pairs kept")


class UFMMeasure(Section):
    every: int = Field(50, ge=1, description="a metrics.jsonl line every this many iterations (and the last)")


class UFMConfig(Section):
    """`nclab ufm key=value ...`; defaults are Zhu et al. 2021's UFM experiment at K = 10."""

    kind: Literal["ufm"] = Field("ufm", description="marks the run directory as a UFM simulation")
    K: int = Field(10, ge=2, description="classes")
    d: int = Field(64, ge=1, description="feature dimension")
    n: int = Field(50, ge=1, description="samples per class (majority classes when minority > 0)")
    minority: int = Field(0, ge=0, description="the last `minority` classes get n / imbalance_ratio samples")
    imbalance_ratio: float = Field(10.0, ge=1, description="n over the minority classes' sample count")
    n_pair: int | None = Field(
        None, ge=0, description="pick_all_label: samples per class pair with both labels (default n)"
    )
    lambda_W: float = Field(5e-4, ge=0, description="decay lambda_W/2 ||W||_F^2")
    lambda_H: float = Field(5e-4, ge=0, description="decay lambda_H/2 ||H||_F^2 (summed over the samples)")
    lambda_b: float = Field(5e-4, ge=0, description="decay lambda_b/2 ||b||^2")
    bias: bool = Field(True, description="learn a bias b (z = W h + b)")
    init_std: float = Field(1.0, gt=0, description="W and H start i.i.d. N(0, init_std^2); b at 0")
    iterations: int = Field(2000, ge=1, description="optimiser iterations at most")
    tol: float = Field(1e-9, ge=0, description="stop when the gradient norm falls below this")
    loss: SerializeAsAny[LossConfig] = Field(
        LossConfig(), validate_default=True, description="any registered loss with its own options"
    )
    optim: UFMOptim = UFMOptim()
    measure: UFMMeasure = UFMMeasure()
    device: Literal["auto", "cpu", "cuda"] = Field(
        "cpu",
        description="cpu by default: at the sizes of the theory, kernel launches cost more than the math",
    )
    dtype: Literal["float64", "float32"] = "float64"
    seed: int = 0
    name: str | None = Field(
        None, description="run directory name; default ufm-<loss>-K<K>-d<d>-n<n>-s<seed>-<time>"
    )
    out: str = "runs"
    plugins: list[str] = plugins_field()

    _loss = component_validator("loss")

    @model_validator(mode="after")
    def _consistent(self) -> UFMConfig:
        if self.minority >= self.K:
            raise ValueError(
                f"minority={self.minority} leaves no majority class; use at most K-1={self.K - 1}"
            )
        if self.loss.reduction != "mean":
            raise ValueError(
                "loss.reduction: the UFM objective averages the loss over samples; leave it mean"
            )
        if self.loss.feature_decay:
            raise ValueError("loss.feature_decay: the UFM's feature decay is lambda_H; set lambda_H instead")
        return self

    @property
    def counts(self) -> list[int]:
        """n_k: n for the first K - minority classes, max(1, round(n / imbalance_ratio)) for the rest."""
        small = max(1, round(self.n / self.imbalance_ratio))
        return [self.n] * (self.K - self.minority) + [small] * self.minority

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(), sort_keys=False)


def resolve_ufm(file: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> UFMConfig:
    """Defaults < YAML file < `key=value` overrides (`loss=ce` sets loss.name, `optim=gd` optim.name)."""
    return resolve(file, overrides, model=UFMConfig)


register_kind(
    "ufm",
    RunKind(
        UFMConfig,
        total=lambda cfg: cfg.iterations,
        stem=lambda cfg: f"ufm-{cfg.loss.name}-K{cfg.K}-d{cfg.d}-n{cfg.n}-s{cfg.seed}",
        run="nclab.ufm.simulate:simulate",
    ),
)
