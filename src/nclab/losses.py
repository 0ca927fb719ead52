"""Losses by name (SPEC.md, "Losses"): `LOSSES.get(name)(config, num_classes, feature_dim) -> nn.Module`.

Every loss module is called as loss(logits, features, targets) -> scalar, so losses on the features
(center losses, feature decay) fit the same slot as losses on the logits.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from nclab.config import LossConfig
from nclab.registry import Registry

__all__ = ["LOSSES", "build_loss"]

LOSSES: Registry = Registry("loss")


class CrossEntropy(nn.Module):
    """ce: -log softmax(z)_y, averaged over the batch."""

    def forward(self, logits: Tensor, features: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits, targets)


@LOSSES.register("ce")
def ce(cfg: LossConfig, num_classes: int, feature_dim: int) -> nn.Module:
    return CrossEntropy()


def build_loss(cfg: LossConfig, num_classes: int, feature_dim: int) -> nn.Module:
    return LOSSES.get(cfg.name)(cfg, num_classes, feature_dim)
