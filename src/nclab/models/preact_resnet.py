"""The standalone-center-loss study's small pre-activation ResNet (mo-vic; He et al. 2016, "Identity
Mappings"), from timm's `PreActBasic` block: a = ReLU(BN(x)); out = conv(ReLU(BN(conv(a)))) + (conv1x1(a)
or x); all convs with bias.

conv 3x3 (C -> 16 w, no padding), five one-block groups 32/32/64/64/128 (x w) with strides 1/2/1/2/1,
BN + ReLU, global average pool, then fc1: Linear(128 w -> model.embed_dim): its linear output is the feature h
(2-d for plots, 128-d in the study), d = embed_dim (K with head.fixdim). Spatial sizes 28 -> 26 -> 13 -> 7.
Init as the study: conv and linear weights kaiming-normal (fan_in, relu), biases 0; BN weight 1, bias 0.
"""

from __future__ import annotations

from functools import partial

from timm.layers import BatchNormAct2d, create_conv2d
from timm.models.resnetv2 import DownsampleConv, PreActBasic
from torch import nn

from nclab.components.models import PreActResNetOptions
from nclab.models import fixdim_check, image_shape, scaled


def preact_resnet(
    cfg: PreActResNetOptions, input_shape: tuple[int, ...], out_dim: int | None = None
) -> tuple[nn.Module, int]:
    c, _, _ = image_shape(input_shape, "preact_resnet", min_size=3)
    widths = [scaled(n, cfg.width) for n in (16, 32, 32, 64, 64, 128)]
    strides = [1, 2, 1, 2, 1]
    dim = fixdim_check(cfg.embed_dim, out_dim)
    layers: list[nn.Module] = [nn.Conv2d(c, widths[0], 3, padding=0)]
    for cin, cout, stride in zip(widths[:-1], widths[1:], strides, strict=True):
        layers.append(
            PreActBasic(
                cin,
                cout,
                stride=stride,
                conv_layer=partial(create_conv2d, bias=True),
                norm_layer=BatchNormAct2d,
                proj_layer=DownsampleConv,
            )
        )
    layers += [BatchNormAct2d(widths[-1]), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], dim)]
    net = nn.Sequential(*layers)
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net, dim
