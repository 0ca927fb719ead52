"""Models by name: `MODELS.get(name)(config, input_shape, out_dim) -> (backbone, feature_dim)` (declared
with their options in components/models.py); a `Classifier` puts a head on the backbone. Every model returns
(logits, features), features being the head's input.

`out_dim` is K when `head.fixdim=true` (Zhu et al. 2021, d = K): the backbone must then emit K features,
natively where the model has a natural place for it (the ResNets' last block, the MLP's last layer) or through
`project` (a learned d -> K linear map) elsewhere.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from nclab.components.models import MODELS
from nclab.config import RunConfig
from nclab.errors import ConfigError
from nclab.models.head import build_head

__all__ = [
    "MODELS",
    "Classifier",
    "build_model",
    "count_parameters",
    "describe",
    "fixdim_check",
    "image_shape",
    "parameter_groups",
    "project",
    "scaled",
    "whole",
]


class Classifier(nn.Module):
    """backbone: x -> h (B x d); head: h -> logits (B x K), or no head (`head.kind=none`: logits None). A
    backbone emitting (B, T, d) (a causal LM) gives one sample per position: h is (B*T, d)."""

    def __init__(self, backbone: nn.Module, head: nn.Module | None, feature_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.feature_dim = feature_dim

    def forward(self, x: Tensor) -> tuple[Tensor | None, Tensor]:
        h = self.backbone(x)
        if h.dim() == 3:  # a sequence model (gpt): every position is a sample, h (B*T, d)
            h = h.flatten(0, 1)
        return (None if self.head is None else self.head(h)), h


def build_model(cfg: RunConfig, input_shape: tuple[int, ...], num_classes: int) -> Classifier:
    """The configured backbone and head; the fixed ETF's rotation P is drawn from `cfg.seed`."""
    if cfg.head.kind == "none" and (cfg.head.fixed or cfg.head.fixdim):
        raise ConfigError(
            "head.kind=none has no classifier to fix or project to K; drop head.fixed/head.fixdim"
        )
    out_dim = num_classes if cfg.head.fixdim else None
    backbone, dim = MODELS.get(cfg.model.name)(cfg.model, tuple(input_shape), out_dim)
    head = None if cfg.head.kind == "none" else build_head(cfg.head, dim, num_classes, cfg.seed)
    tie = getattr(backbone, "tie", None)
    if callable(tie):  # a model whose token embedding is the classifier's W (gpt with model.tie)
        tie(head)
    return Classifier(backbone, head, dim)


def fixdim_check(d: int, out_dim: int | None) -> int:
    """The feature dimension a builder returns: `out_dim` (head.fixdim) if given, once checked to reduce d."""
    if out_dim is None:
        return d
    if d <= out_dim:
        raise ConfigError(
            f"head.fixdim=true projects features to K={out_dim}, but this model's features are already "
            f"d={d} <= K; drop head.fixdim or widen the model"
        )
    return out_dim


def project(backbone: nn.Module, d: int, out_dim: int | None) -> tuple[nn.Module, int]:
    """Generic `head.fixdim`: a learned linear d -> K map after the backbone; its output is h."""
    if out_dim is None:
        return backbone, d
    return nn.Sequential(backbone, nn.Linear(d, fixdim_check(d, out_dim))), out_dim


def image_shape(input_shape: tuple[int, ...], model: str, min_size: int = 1) -> tuple[int, int, int]:
    """(C, H, W) of an image input, or one ConfigError naming what `model` needs."""
    if len(input_shape) != 3:
        raise ConfigError(
            f"model={model} needs image inputs C x H x W, but the data gives shape {tuple(input_shape)}; "
            "use model=mlp or an image dataset"
        )
    c, h, w = input_shape
    if min(h, w) < min_size:
        raise ConfigError(f"model={model} needs images of at least {min_size}x{min_size}, got {h}x{w}")
    return c, h, w


def scaled(channels: int, width: float) -> int:
    """`channels * width` rounded, at least 1 (the `model.width` channel multiplier)."""
    return max(1, round(channels * width))


def parameter_groups(model: Classifier) -> dict[str, list[nn.Parameter]]:
    """Trainable parameters split for separate weight decay: "weight" (the classifier's W; empty when fixed
    or absent), "bias" (the classifier's b; empty without one), "backbone" (all others, fixdim included)."""

    def trainable(p: Tensor | None) -> list[nn.Parameter]:
        return [p] if isinstance(p, nn.Parameter) and p.requires_grad else []

    head = model.head
    weight = [] if head is None else trainable(head.weight)
    bias = [] if head is None else trainable(head.bias)
    taken = {id(p) for p in weight + bias}
    return {
        "backbone": [p for p in model.parameters() if p.requires_grad and id(p) not in taken],
        "weight": weight,
        "bias": bias,
    }


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def describe(cfg: RunConfig, input_shape: tuple[int, ...], num_classes: int) -> tuple[int, int]:
    """(feature dim d, trainable parameters) of the configured model, built on the meta device (no memory,
    no init cost); raises the ConfigError a real build would."""
    with torch.device("meta"):
        model = build_model(cfg, input_shape, num_classes)
    return model.feature_dim, count_parameters(model)


def whole(value: float, key: str) -> int:
    """A config number that must be an integer for this model (e.g. the MLP's `model.width`)."""
    if value != math.floor(value):
        raise ConfigError(f"{key} must be a whole number for this model, got {value}")
    return int(value)
