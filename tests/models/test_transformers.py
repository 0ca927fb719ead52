"""timm ViT / Swin for 32x32 inputs: selectable patch size, depth, width and heads."""

import pytest
import torch

from nclab.config import resolve
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
