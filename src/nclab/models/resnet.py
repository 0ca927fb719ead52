"""ResNet18/34/50 (He et al. 2016) from torchvision's BasicBlock / Bottleneck, CIFAR-size or ImageNet inputs.

- `model.stem`: cifar = conv 3x3 stride 1, BN, ReLU, no max-pool (the 2021 study's --SOTA, the 2022/2023/2025
  studies); imagenet = conv 7x7 stride 2, BN, ReLU, max-pool 3x3 stride 2 (torchvision; the 2021 default).
- `model.width` multiplies every stage's channels: stages round(64 w) * (1, 2, 4, 8) (Zhu et al. 2021's
  ResNet18_adapt with k = 64 w).
- `base_width` sets the Bottleneck inner width int(planes * base_width / 64) (wide_resnet.py).
- features h: global average pool of the last stage, d = 8 * round(64 w) * expansion (512 / 2048 at w = 1).
- `out_dim` (head.fixdim): the last block of the last stage emits K channels with a 1x1-conv + BN shortcut
  (Zhu et al. 2021), so d = K.
Init as torchvision: convs kaiming-normal (fan_out, relu), BN weight 1 and bias 0.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1, conv3x3

from nclab.components.models import ResNetOptions
from nclab.models import fixdim_check, image_shape, scaled

__all__ = ["ResNet"]

Block = type[BasicBlock] | type[Bottleneck]


class ResNet(nn.Module):
    def __init__(
        self,
        block: Block,
        layers: list[int],
        in_chans: int = 3,
        stem: str = "cifar",
        base_planes: int = 64,
        base_width: float = 64,
        out_dim: int | None = None,
    ) -> None:
        super().__init__()
        if stem == "cifar":
            conv = nn.Conv2d(in_chans, base_planes, 3, stride=1, padding=1, bias=False)
            pool: nn.Module = nn.Identity()
        else:
            conv = nn.Conv2d(in_chans, base_planes, 7, stride=2, padding=3, bias=False)
            pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.stem = nn.Sequential(conv, nn.BatchNorm2d(base_planes), nn.ReLU(inplace=True), pool)
        self.inplanes = base_planes
        self.base_width = base_width
        self.layer1 = self._make_layer(block, base_planes, layers[0], 1)
        self.layer2 = self._make_layer(block, 2 * base_planes, layers[1], 2)
        self.layer3 = self._make_layer(block, 4 * base_planes, layers[2], 2)
        self.layer4 = self._make_layer(block, 8 * base_planes, layers[3], 2)
        self.feature_dim = fixdim_check(self.inplanes, out_dim)
        if out_dim is not None:
            self._narrow_last_block(out_dim)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        out = planes * block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            downsample = nn.Sequential(conv1x1(self.inplanes, out, stride), nn.BatchNorm2d(out))
        kw = {"base_width": self.base_width}
        layers = [block(self.inplanes, planes, stride, downsample, **kw)]
        self.inplanes = out
        layers += [block(out, planes, **kw) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _narrow_last_block(self, k: int) -> None:
        """The last block's final conv emits k channels; its shortcut becomes conv1x1 + BN to k channels."""
        last = self.layer4[-1]
        if isinstance(last, Bottleneck):
            last.conv3, last.bn3 = conv1x1(last.conv3.in_channels, k), nn.BatchNorm2d(k)
        else:
            last.conv2, last.bn2 = conv3x3(last.conv2.in_channels, k), nn.BatchNorm2d(k)
        last.downsample = nn.Sequential(conv1x1(last.conv1.in_channels, k, last.stride), nn.BatchNorm2d(k))

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.pool(x)


def _builder(block: Block, layers: list[int], name: str):
    def build(
        cfg: ResNetOptions, input_shape: tuple[int, ...], out_dim: int | None = None
    ) -> tuple[nn.Module, int]:
        c, _, _ = image_shape(input_shape, name)
        net = ResNet(block, layers, c, cfg.stem, scaled(64, cfg.width), out_dim=out_dim)
        return net, net.feature_dim

    return build


resnet18 = _builder(BasicBlock, [2, 2, 2, 2], "resnet18")
resnet34 = _builder(BasicBlock, [3, 4, 6, 3], "resnet34")
resnet50 = _builder(Bottleneck, [3, 4, 6, 3], "resnet50")
