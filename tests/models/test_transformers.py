"""timm ViT / Swin for 32x32 inputs: selectable patch size, depth, width and heads."""

import pytest
import torch

from nclab.config import resolve
from nclab.errors import ConfigError
from nclab.models import build_model, describe


def test_vit_patch_grid_and_width():
    model = build_model(
        resolve(
            None, ["model=vit", "model.width=24", "model.depth=1", "model.heads=3", "model.patch_size=2"]
        ),
        (3, 32, 32),
        10,
    )
    net = model.backbone
    assert net.patch_embed.num_patches == 256 and len(net.blocks) == 1 and net.blocks[0].attn.num_heads == 3
    assert model(torch.randn(2, 3, 32, 32))[1].shape == (2, 24)


@pytest.mark.parametrize(("depth", "d"), [(1, 64), ([1, 1], 32), ([2, 2, 6, 1], 128)])
def test_swin_depth_sets_stages_and_feature_dim(depth, d):
    net = build_model(
        resolve(None, ["model=swin", "model.width=16", "model.heads=2", f"model.depth={depth}"]),
        (3, 32, 32),
        10,
    ).backbone
    stages = depth if isinstance(depth, list) else [depth] * 3
    assert [len(stage.blocks) for stage in net.layers] == stages
    assert [stage.blocks[0].attn.num_heads for stage in net.layers] == [2 * 2**i for i in range(len(stages))]
    assert net.num_features == d


def test_default_sizes_are_small():
    assert describe(resolve(None, ["model=vit"]), (3, 32, 32), 10) == (192, 2_693_578)
    assert describe(resolve(None, ["model=swin"]), (3, 32, 32), 10)[0] == 192


BCE_VIT = [
    "model=vit", "model.width=512", "model.depth=6", "model.heads=10", "model.head_dim=64",
    "model.mlp_dim=512", "model.qkv_bias=false", "model.dropout=0.2", "model.emb_dropout=0.1",
]  # fmt: skip


@pytest.mark.parametrize(("k", "count"), [(10, 11_096_586), (100, 11_142_756)])
def test_bce_study_vit_parameter_count(k, count):
    """lucidrains ViT(image 32, patch 4, dim 512, depth 6, heads 10, dim_head 64, mlp 512) + LayerNorm +
    inner_product head, as built by Xiao-hb/BCE-vs.-CE train.py; counts of the original code."""
    assert describe(resolve(None, BCE_VIT), (3, 32, 32), k) == (512, count)


def test_bce_study_vit_blocks_have_an_inner_dim_of_640_projected_back():
    model = build_model(resolve(None, BCE_VIT), (3, 32, 32), 10)
    attn = model.backbone.blocks[0].attn
    assert (attn.qkv.in_features, attn.qkv.out_features, attn.qkv.bias) == (512, 3 * 640, None)
    assert (attn.proj.in_features, attn.proj.out_features) == (640, 512)
    assert model.backbone.blocks[0].mlp.fc1.out_features == 512
    model.eval()
    assert model(torch.randn(2, 3, 32, 32))[1].shape == (2, 512)


@pytest.mark.parametrize(("k", "count"), [(10, 26_598_646), (100, 26_667_856)])
def test_bce_study_swin_parameter_count(k, count):
    """berniwal swin_t(window 4, downscaling (2, 2, 2, 1)) + LayerNorm(768) + inner_product head, as built by
    Xiao-hb/BCE-vs.-CE train.py; trainable counts of the original code (its shift masks are frozen)."""
    assert describe(resolve(None, ["model=swin_cifar"]), (3, 32, 32), k) == (768, count)


def test_swin_cifar_stages_and_shifted_window_mask():
    model = build_model(resolve(None, ["model=swin_cifar"]), (3, 32, 32), 10)
    stages = model.backbone.stages
    assert [len(s) - 1 for s in stages] == [2, 2, 6, 2]
    assert [s[0].linear.out_features for s in stages] == [96, 192, 384, 768]
    assert [s[1].attn.heads for s in stages] == [3, 6, 12, 24]
    attn = stages[0][2].attn  # shifted: the 16x16 map's last window row and column mix rolled regions
    mask = attn._mask(16, 16, torch.device("cpu"))
    assert mask.shape == (16, 16, 16) and torch.isfinite(mask[0]).all() and torch.isinf(mask[-1]).any()
    assert model(torch.randn(2, 3, 32, 32))[0].shape == (2, 10)


def test_swin_cifar_rejects_maps_the_windows_do_not_tile():
    with pytest.raises(ConfigError, match="does not tile the 28x28 image"):
        describe(resolve(None, ["model=swin_cifar"]), (3, 28, 28), 10)
    with pytest.raises(ConfigError, match="one entry per stage"):
        describe(
            resolve(None, ["model=swin_cifar", "model.depth=[2,2]", "model.heads=[3,6,12]"]), (3, 32, 32), 10
        )
