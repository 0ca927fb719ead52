"""Vision transformers from timm, sized for small (e.g. 32x32) images and never pretrained.

- `vit` (Dosovitskiy et al. 2021): patch `model.patch_size` (4), embedding `model.width` (192), `model.depth`
  blocks (6), `model.heads` (3); CLS-token pooling; h = the final LayerNorm's CLS output, d = width (as the
  BCE-vs-CE study's ViT, whose feature is the head LayerNorm's output).
- `swin` (Liu et al. 2021): patch `model.patch_size` (2), stage-1 embedding `model.width` (48), blocks per
  stage `model.depth` (2 in each of 3 stages; a list gives one entry per stage), heads `model.heads` (3)
  doubling per stage, windows of `model.window_size` (4) patches; h = mean-pooled final LayerNorm output,
  d = width * 2^(stages - 1). A 32x32 image with patch 2 runs at 16, 8 and 4 patches per side.
"""

from __future__ import annotations

from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from nclab.config import ModelConfig
from nclab.errors import ConfigError
from nclab.models import MODELS, image_shape, project, whole


def _patches(input_shape: tuple[int, ...], name: str, patch: int, merges: int = 0) -> tuple[int, int, int]:
    """(C, H, W) once the patch size divides the image (and the patch grid survives `merges` halvings)."""
    c, h, w = image_shape(input_shape, name)
    step = patch * 2**merges
    if h % step or w % step:
        what = (
            f"patch size {patch}" if not merges else f"patch size {patch} x 2^{merges} patch merges = {step}"
        )
        raise ConfigError(
            f"model={name}: {what} does not divide the {h}x{w} image; pick model.patch_size so that it does"
            + (" (or fewer stages: a shorter model.depth list)" if merges else "")
        )
    return c, h, w


def _heads(width: int, heads: int, name: str) -> int:
    if width % heads:
        raise ConfigError(f"model={name}: model.width={width} is not divisible by model.heads={heads}")
    return heads


@MODELS.register("vit")
def vit(cfg: ModelConfig, input_shape: tuple[int, ...], out_dim: int | None = None) -> tuple[nn.Module, int]:
    patch = cfg.patch_size or 4
    width = whole(cfg.width or 192, "model.width")
    if not isinstance(cfg.depth, int | None):
        raise ConfigError(f"model=vit takes one number of blocks in model.depth, got {cfg.depth}")
    c, h, w = _patches(input_shape, "vit", patch)
    net = VisionTransformer(
        img_size=(h, w),
        patch_size=patch,
        in_chans=c,
        num_classes=0,
        embed_dim=width,
        depth=cfg.depth or 6,
        num_heads=_heads(width, cfg.heads or 3, "vit"),
    )
    return project(net, net.num_features, out_dim)


@MODELS.register("swin")
def swin(cfg: ModelConfig, input_shape: tuple[int, ...], out_dim: int | None = None) -> tuple[nn.Module, int]:
    patch = cfg.patch_size or 2
    width = whole(cfg.width or 48, "model.width")
    depths = tuple(cfg.depth) if isinstance(cfg.depth, list) else (cfg.depth or 2,) * 3
    heads = _heads(width, cfg.heads or 3, "swin")
    c, h, w = _patches(input_shape, "swin", patch, merges=len(depths) - 1)
    net = SwinTransformer(
        img_size=(h, w),
        patch_size=patch,
        in_chans=c,
        num_classes=0,
        embed_dim=width,
        depths=depths,
        num_heads=tuple(heads * 2**i for i in range(len(depths))),
        window_size=cfg.window_size,
        drop_path_rate=0.0,
    )
    return project(net, net.num_features, out_dim)
