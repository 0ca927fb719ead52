"""DenseNet-BC 121 (Huang et al. 2017), torchvision's `DenseNet`, blocks (6, 12, 24, 16), bn_size 4.

- `densenet121`: torchvision's own: growth 32, 64 initial features, 7x7 stride-2 stem + max-pool; d = 1024.
- `densenet121_cifar`: the BCE-vs-CE study's CIFAR variant: growth 16, 32 initial features, the same stem
  without the max-pool (32x32 -> 16x16 -> 2x2 after three transitions); d = 512.
features h: final BN, ReLU, global average pool (torchvision's forward without its classifier).
"""

from __future__ import annotations

from torch import nn
from torchvision.models.densenet import DenseNet

from nclab.config import ModelConfig
from nclab.models import image_shape, project


def _densenet(
    input_shape: tuple[int, ...],
    name: str,
    growth: int,
    init_features: int,
    max_pool: bool,
    out_dim: int | None,
) -> tuple[nn.Module, int]:
    # three 2x2 average-pool transitions need an 8x8 map after the stem: H >= 15 (29 with the max-pool)
    c, _, _ = image_shape(input_shape, name, min_size=29 if max_pool else 15)
    net = DenseNet(growth_rate=growth, block_config=(6, 12, 24, 16), num_init_features=init_features)
    features = net.features
    if c != 3:
        features.conv0 = nn.Conv2d(c, init_features, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(features.conv0.weight)
    if not max_pool:
        features.pool0 = nn.Identity()
    backbone = nn.Sequential(features, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return project(backbone, net.classifier.in_features, out_dim)


def densenet121(
    cfg: ModelConfig, input_shape: tuple[int, ...], out_dim: int | None = None
) -> tuple[nn.Module, int]:
    return _densenet(input_shape, "densenet121", 32, 64, True, out_dim)


def densenet121_cifar(
    cfg: ModelConfig, input_shape: tuple[int, ...], out_dim: int | None = None
) -> tuple[nn.Module, int]:
    return _densenet(input_shape, "densenet121_cifar", 16, 32, False, out_dim)
