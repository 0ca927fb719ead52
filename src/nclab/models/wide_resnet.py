"""wide_resnet50 (Zhou et al. 2022, `wide_resnet50_cifar`): ResNet50's Bottleneck stages [3, 4, 6, 3] with the
bottleneck inner width int(planes * width) and the outer channels 4 * planes unchanged, so d = 2048 at every
width: width 1 is ResNet50, width 2 is WideResNet50-2 (torchvision's semantics), 0.25 and 0.5 thinner.
Trainable parameters with the cifar stem and K = 10: 5.88M / 10.35M / 23.52M / 66.85M at width
0.25 / 0.5 / 1 / 2.
"""

from __future__ import annotations

from torch import nn
from torchvision.models.resnet import Bottleneck

from nclab.components.models import WideResNetOptions
from nclab.errors import ConfigError
from nclab.models import image_shape
from nclab.models.resnet import ResNet


def wide_resnet50(
    cfg: WideResNetOptions, input_shape: tuple[int, ...], out_dim: int | None = None
) -> tuple[nn.Module, int]:
    width = cfg.width
    if int(64 * width) < 1:
        raise ConfigError(f"model.width={width} leaves wide_resnet50's first bottlenecks empty; use >= 1/64")
    c, _, _ = image_shape(input_shape, "wide_resnet50")
    net = ResNet(Bottleneck, [3, 4, 6, 3], c, cfg.stem, base_width=64 * width, out_dim=out_dim)
    return net, net.feature_dim
