"""Losses by name: the `LOSSES` registry, each loss's own options (extending config.LossConfig) and the
in-tree losses declared with their builders (losses.py, imported on first use):
`LOSSES.get(name)(options, num_classes, feature_dim) -> Loss`."""

from __future__ import annotations

from pydantic import Field

from nclab.components.base import LossConfig
from nclab.registry import Registry

__all__ = ["LOSSES"]

LOSSES: Registry = Registry("loss", LossConfig)


class MseOptions(LossConfig):
    scale: float = Field(1.0, gt=0, description="target s * one_hot(y) (Zhou et al. 2022: 15)")


class FocalOptions(LossConfig):
    gamma: float = Field(3.0, ge=0, description="exponent of (1 - p_y)")


class SmoothingOptions(LossConfig):
    smoothing: float = Field(0.05, ge=0, le=1, description="alpha of (1 - alpha) e_y + alpha/K")


class PickAllOptions(LossConfig):
    normalize: bool = Field(
        False, description="divide by the label count |Y_i| (what the original's data did)"
    )


class CenterOptions(LossConfig):
    center_lr: float | None = Field(None, gt=0, description="own lr for the centers; default optim's lr")


class CenterLossOptions(CenterOptions):
    center_weight: float = Field(1.0, ge=0, description="lambda of lambda/2 ||h - c_y||^2")


class StandaloneOptions(CenterOptions):
    w_intra: float = Field(1.0, ge=0, description="weight of mean ||h_i - c_{y_i}||^2")
    w_inter: float = Field(0.1, ge=0, description="weight of the log inter-class push")


# (name, builder in nclab.losses, options, description)
for _name, _builder, _options, _description in [
    ("ce", "ce", None, "cross-entropy -log p_y"),
    (
        "label_smoothing",
        "label_smoothing",
        SmoothingOptions,
        "cross-entropy against (1 - alpha) e_y + alpha/K (Szegedy et al. 2016)",
    ),
    ("mse", "mse", MseOptions, "mean over K of (z_k - s 1[k=y])^2 (Hui & Belkin 2021)"),
    ("focal", "focal", FocalOptions, "-(1 - p_y)^gamma log p_y (Lin et al. 2017)"),
    ("bce", "bce", None, "binary cross-entropy summed over the K one-vs-all problems"),
    (
        "pick_all_label",
        "pick_all_label",
        PickAllOptions,
        "sum over the true labels of -log p_k, multi-hot targets (Li et al. 2023)",
    ),
    (
        "center",
        "center",
        CenterLossOptions,
        "cross-entropy + lambda/2 ||h - c_y||^2, learned centers (Wen et al. 2016)",
    ),
    (
        "standalone_center",
        "standalone_center",
        StandaloneOptions,
        "intra-class pull to learned centers, log inter-class push; no classifier (mo-vic 2019)",
    ),
]:
    LOSSES.declare(_name, f"nclab.losses:{_builder}", _options, _description)
