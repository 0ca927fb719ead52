"""Multi-layer perceptron (Zhu et al. 2021): input flattened, then `depth` x [Linear, (BatchNorm), ReLU].
With head.fixdim the last hidden layer has K units."""

from __future__ import annotations

import math

from torch import nn

from nclab.components.models import MLPOptions
from nclab.models import fixdim_check, whole


def mlp(cfg: MLPOptions, input_shape: tuple[int, ...], out_dim: int | None = None) -> tuple[nn.Module, int]:
    width = whole(cfg.width, "model.width")
    depth = cfg.depth
    widths = [width] * (depth - 1) + [fixdim_check(width, out_dim)]
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = math.prod(input_shape)
    for units in widths:
        layers.append(nn.Linear(fan_in, units))
        if cfg.batch_norm:
            layers.append(nn.BatchNorm1d(units))
        layers.append(nn.ReLU(inplace=True))
        fan_in = units
    return nn.Sequential(*layers), fan_in
