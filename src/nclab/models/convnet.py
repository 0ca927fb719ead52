"""`convnet`: a small CNN for quick MNIST-size runs: three [conv 3x3, BN, ReLU] stages of 32/64/128 (x
`model.width`) channels with 2x2 max-pools after the first two, then global average pooling; d = 128 w
(K with head.fixdim: the last conv emits K channels)."""

from __future__ import annotations

from torch import nn

from nclab.components.models import ConvNetOptions
from nclab.models import fixdim_check, image_shape, scaled


def convnet(
    cfg: ConvNetOptions, input_shape: tuple[int, ...], out_dim: int | None = None
) -> tuple[nn.Module, int]:
    c, _, _ = image_shape(input_shape, "convnet", min_size=4)
    widths = [scaled(32, cfg.width), scaled(64, cfg.width), scaled(128, cfg.width)]
    widths[-1] = fixdim_check(widths[-1], out_dim)
    layers: list[nn.Module] = []
    for i, width in enumerate(widths):
        layers += [
            nn.Conv2d(c, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        if i < 2:
            layers.append(nn.MaxPool2d(2))
        c = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), widths[-1]
