"""DenseNet121: torchvision's (d = 1024) and the BCE study's CIFAR variant (growth 16, d = 512)."""

import torch

from nclab.config import resolve
from nclab.models import build_model


def test_cifar_variant_channels_and_map_sizes():
    model = build_model(resolve(None, ["model=densenet121_cifar"]), (3, 32, 32), 10)
    features = model.backbone[0]
    assert features.conv0.out_channels == 32 and isinstance(features.pool0, torch.nn.Identity)
    x = features(torch.randn(2, 3, 32, 32))
    assert x.shape == (2, 512, 2, 2)


def test_torchvision_densenet121_on_grayscale():
    model = build_model(resolve(None, ["model=densenet121"]), (1, 32, 32), 10)
    assert (
        model.backbone[0].conv0.in_channels == 1
        and model.backbone[0].denseblock1.denselayer1.conv2.out_channels == 32
    )
    assert model(torch.randn(2, 1, 32, 32))[1].shape == (2, 1024)
