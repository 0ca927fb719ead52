"""ResNet parameter counts against the 2021 study's (reference/seed-core.md A3, K = 10); the d = K claim."""

import pytest
import torch

from nclab.config import resolve
from nclab.models import build_model, describe


def count(*overrides, shape=(3, 32, 32), k=10):
    return describe(resolve(None, list(overrides)), shape, k)


def test_resnet18_cifar_stem_count_and_fixdim_saves_over_20_percent():
    d, n = count("model=resnet18", "model.stem=cifar")
    assert d == 512 and abs(n - 11.17e6) <= 0.05e6 and n == 11_173_962
    d_fix, n_fix = count("model=resnet18", "model.stem=cifar", "head.fixdim=true")
    assert d_fix == 10 and n_fix == 8_859_862  # learned W, d = 10 (seed-core.md A3)
    assert n_fix <= 0.8 * n


@pytest.mark.parametrize(
    ("overrides", "want"),
    [
        (["model=resnet18", "model.stem=imagenet"], 11_181_642),  # torchvision's resnet18(num_classes=10)
        (["model=resnet18", "model.stem=imagenet", "head.fixed=etf"], 11_176_522),
        (["model=resnet18", "model.stem=cifar", "head.fixed=etf", "head.fixdim=true"], 8_859_762),
        (["model=resnet50", "model.stem=cifar"], 23_520_842),
        (["model=resnet50", "model.stem=imagenet", "head.fixdim=true"], 22_481_110),
    ],
)
def test_counts_match_the_2021_table(overrides, want):
    assert count(*overrides)[1] == want


@pytest.mark.parametrize(("k", "want"), [(1, 2_991), (4, 44_622), (16, 701_466), (64, 11_173_962)])
def test_width_matches_resnet18_adapt(k, want):
    """ResNet18_adapt(k) of the 2021 study is resnet18 with the cifar stem and width k / 64."""
    d, n = count("model=resnet18", f"model.width={k / 64}")
    assert d == 8 * k and n == want


def test_imagenet_stem_reduces_a_32px_image_to_one_pixel():
    model = build_model(
        resolve(None, ["model=resnet18", "model.stem=imagenet", "model.width=0.125"]), (3, 32, 32), 10
    )
    x = model.backbone.stem(torch.randn(2, 3, 32, 32))
    assert x.shape[-1] == 8  # 7x7 stride 2, then max-pool stride 2
    x = model.backbone.layer4(model.backbone.layer3(model.backbone.layer2(model.backbone.layer1(x))))
    assert x.shape[-2:] == (1, 1)
