"""Multi-layer perceptron (Zhu et al. 2021): input flattened, then `depth` x [Linear, (BatchNorm), ReLU]."""

from __future__ import annotations

import math

from torch import nn

from nclab.config import ModelConfig
from nclab.models import MODELS


@MODELS.register("mlp")
def mlp(cfg: ModelConfig, input_shape: tuple[int, ...]) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = math.prod(input_shape)
    for _ in range(cfg.depth):
        layers.append(nn.Linear(fan_in, cfg.width))
        if cfg.batch_norm:
            layers.append(nn.BatchNorm1d(cfg.width))
        layers.append(nn.ReLU(inplace=True))
        fan_in = cfg.width
    return nn.Sequential(*layers), cfg.width
