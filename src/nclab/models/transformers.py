"""Vision transformers from timm, sized for small (e.g. 32x32) images and never pretrained.

- `vit` (Dosovitskiy et al. 2021): patch `model.patch_size` (4), embedding `model.width` (192), `model.depth`
  blocks (6), `model.heads` (3); CLS-token pooling; h = the final LayerNorm's CLS output, d = width (as the
  BCE-vs-CE study's ViT, whose feature is the head LayerNorm's output).
- `swin` (Liu et al. 2021): patch `model.patch_size` (2), stage-1 embedding `model.width` (48), blocks per
  stage `model.depth` (2 in each of 3 stages; a list gives one entry per stage), heads `model.heads` (3)
  doubling per stage, windows of `model.window_size` (4) patches; h = mean-pooled final LayerNorm output,
  d = width * 2^(stages - 1). A 32x32 image with patch 2 runs at 16, 8 and 4 patches per side.
- `swin_cifar`: the Swin-T of the BCE-vs-CE study (Li et al. 2025; berniwal/swin-transformer-pytorch) for
  32x32 images: stage i merges `model.downscaling[i]` x `model.downscaling[i]` patches by a linear map (with
  bias, no norm; the first is the patch embedding) to width * 2^i channels, then `model.depth[i]` blocks
  (alternating plain and shifted windows) of `model.heads[i]` heads of `model.head_dim`; qkv without bias and
  one relative-position table per block shared by its heads. Defaults are the study's: width 96, depth
  [2, 2, 6, 2], heads [3, 6, 12, 24], head_dim 32, window 4, downscaling [2, 2, 2, 1] (32 -> 16 -> 8 -> 4 -> 4
  patches per side); h = LayerNorm of the mean-pooled last stage, d = 768; 26,598,646 parameters for K = 10.

The ViT's `model.head_dim`, `model.mlp_dim`, `model.qkv_bias`, `model.dropout` and `model.emb_dropout` give
the BCE study's ViT (lucidrains/vit-pytorch): width 512, depth 6, 10 heads of dim 64 (inner dimension 640 with
an output projection), MLP 512, no qkv bias, dropout 0.2 / 0.1: 11,096,586 parameters for K = 10.
"""

from __future__ import annotations

import torch
from timm.layers import Mlp
from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import Attention, VisionTransformer
from torch import Tensor, nn

from nclab.components.models import SwinCifarOptions, SwinOptions, ViTOptions
from nclab.errors import ConfigError
from nclab.models import image_shape, project, whole


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


def _attention(head_dim: int | None) -> type[Attention]:
    """timm's Attention with heads of `head_dim` (None: width / heads); timm's Block wants a class."""

    class HeadDimAttention(Attention):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, attn_head_dim=head_dim, **kwargs)

    return HeadDimAttention


def vit(cfg: ViTOptions, input_shape: tuple[int, ...], out_dim: int | None = None) -> tuple[nn.Module, int]:
    patch = cfg.patch_size
    width = whole(cfg.width, "model.width")
    depth, heads = cfg.depth, cfg.heads
    if cfg.head_dim is None:
        _heads(width, heads, "vit")
    mlp = cfg.mlp_dim or 4 * width
    c, h, w = _patches(input_shape, "vit", patch)
    net = VisionTransformer(
        img_size=(h, w),
        patch_size=patch,
        in_chans=c,
        num_classes=0,
        embed_dim=width,
        depth=depth,
        num_heads=heads,
        mlp_ratio=(mlp + 0.5) / width,  # timm sizes the MLP int(width * ratio): exactly `mlp`
        qkv_bias=cfg.qkv_bias,
        attn_layer=_attention(cfg.head_dim),
        proj_drop_rate=cfg.dropout,
        pos_drop_rate=cfg.emb_dropout,
    )
    return project(net, net.num_features, out_dim)


def swin(cfg: SwinOptions, input_shape: tuple[int, ...], out_dim: int | None = None) -> tuple[nn.Module, int]:
    patch = cfg.patch_size
    width = whole(cfg.width, "model.width")
    depths = tuple(cfg.depth) if isinstance(cfg.depth, list) else (cfg.depth,) * 3
    heads = _heads(width, cfg.heads, "swin")
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


class WindowAttention(nn.Module):
    """Multi-head self-attention inside w x w windows of a (B, H, W, C) map (Liu et al. 2021), as berniwal's:
    logits q k^T / sqrt(head_dim) + a relative-position table ((2w-1) x (2w-1), shared by the heads);
    `shift` rolls the map by -w/2 first (and back after) and masks pairs that the roll brought together."""

    def __init__(self, dim: int, heads: int, head_dim: int, window: int, shift: bool, qkv_bias: bool) -> None:
        super().__init__()
        self.heads, self.head_dim, self.window, self.shift = (
            heads,
            head_dim,
            window,
            window // 2 if shift else 0,
        )
        self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=qkv_bias)
        self.proj = nn.Linear(heads * head_dim, dim)
        self.rel_table = nn.Parameter(torch.randn(2 * window - 1, 2 * window - 1))
        coords = torch.stack(
            torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        ).flatten(1)
        self.register_buffer(
            "rel_index", (coords[:, None, :] - coords[:, :, None] + window - 1), persistent=False
        )

    def _windows(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, nW, w*w, C), windows in row-major order."""
        b, h, w, c = x.shape
        s = self.window
        return x.view(b, h // s, s, w // s, s, c).transpose(2, 3).reshape(b, -1, s * s, c)

    def _mask(self, h: int, w: int, device: torch.device) -> Tensor:
        """(nW, w*w, w*w): -inf between positions of different regions of the rolled map."""
        region = torch.zeros(1, h, w, 1, device=device)
        cuts = (slice(0, -self.window), slice(-self.window, -self.shift), slice(-self.shift, None))
        for i, rows in enumerate(cuts):
            for j, cols in enumerate(cuts):
                region[:, rows, cols] = 3 * i + j
        labels = self._windows(region).squeeze(-1)[0]
        return torch.zeros(labels.shape + labels.shape[-1:], device=device).masked_fill(
            labels[:, :, None] != labels[:, None, :], float("-inf")
        )

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, _ = x.shape
        if self.shift:
            x = torch.roll(x, (-self.shift, -self.shift), (1, 2))
        q, k, v = (
            self._windows(self.qkv(x)).unflatten(-1, (3, self.heads, self.head_dim)).permute(3, 0, 4, 1, 2, 5)
        )
        logits = (
            q @ k.transpose(-1, -2) * self.head_dim**-0.5
            + self.rel_table[self.rel_index[0], self.rel_index[1]]
        )
        if self.shift:
            logits = logits + self._mask(h, w, x.device)[None, None]
        out = (logits.softmax(-1) @ v).permute(0, 2, 3, 1, 4).flatten(-2)  # B, nW, w*w, inner
        s = self.window
        out = self.proj(out.view(b, h // s, w // s, s, s, -1).transpose(2, 3).reshape(b, h, w, -1))
        return torch.roll(out, (self.shift, self.shift), (1, 2)) if self.shift else out


class SwinBlock(nn.Module):
    """Pre-norm residual block: x + attention(LN x), then x + MLP(LN x) with 4 x dim hidden units, GELU."""

    def __init__(self, dim: int, attention: WindowAttention) -> None:
        super().__init__()
        self.norm1, self.attn, self.norm2 = nn.LayerNorm(dim), attention, nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchMerge(nn.Module):
    """(B, H, W, C) -> (B, H/f, W/f, out): each f x f patch flattened (channel-major, as nn.Unfold) and mapped
    by a linear layer with bias."""

    def __init__(self, channels: int, out: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.linear = nn.Linear(channels * factor**2, out)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        f = self.factor
        x = x.view(b, h // f, f, w // f, f, c).permute(0, 1, 3, 5, 2, 4).reshape(b, h // f, w // f, -1)
        return self.linear(x)


class SwinCifar(nn.Module):
    """Stages of (PatchMerge, blocks); h = LayerNorm of the spatial mean of the last stage."""

    def __init__(
        self, in_chans: int, width: int, depths: list[int], heads: list[int], head_dim: int, window: int,
        downscaling: list[int], qkv_bias: bool,
    ) -> None:  # fmt: skip
        super().__init__()
        dims = [width * 2**i for i in range(len(depths))]
        self.stages = nn.ModuleList()
        for i, (dim, depth, n_heads, f) in enumerate(zip(dims, depths, heads, downscaling, strict=True)):
            blocks = [
                SwinBlock(dim, WindowAttention(dim, n_heads, head_dim, window, j % 2 == 1, qkv_bias))
                for j in range(depth)
            ]
            self.stages.append(
                nn.Sequential(PatchMerge(in_chans if i == 0 else dims[i - 1], dim, f), *blocks)
            )
        self.norm = nn.LayerNorm(dims[-1])
        self.num_features = dims[-1]

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        for stage in self.stages:
            x = stage(x)
        return self.norm(x.mean((1, 2)))


def swin_cifar(
    cfg: SwinCifarOptions, input_shape: tuple[int, ...], out_dim: int | None = None
) -> tuple[nn.Module, int]:
    width = whole(cfg.width, "model.width")
    depths = cfg.depth if isinstance(cfg.depth, list) else [cfg.depth or 2, cfg.depth or 2, 6, 2]
    heads = cfg.heads if isinstance(cfg.heads, list) else [cfg.heads * 2**i for i in range(len(depths))]
    scales = cfg.downscaling or [2, 2, 2, 1][: len(depths)] + [1] * max(0, len(depths) - 4)
    if not len(depths) == len(heads) == len(scales):
        raise ConfigError(
            f"model=swin_cifar: model.depth {depths}, model.heads {heads} and model.downscaling {scales} "
            "need one entry per stage"
        )
    if any(d % 2 for d in depths):
        raise ConfigError(
            f"model=swin_cifar: each stage's depth is pairs of plain + shifted blocks, got {depths}"
        )
    c, h, w = image_shape(input_shape, "swin_cifar")
    for f in scales:
        if h % f or w % f or (h // f) % cfg.window_size or (w // f) % cfg.window_size:
            raise ConfigError(
                f"model=swin_cifar: downscaling {scales} with window {cfg.window_size} does not tile the "
                f"{input_shape[1]}x{input_shape[2]} image (each stage's map must divide by its factor, then "
                "by the window); change model.downscaling or model.window_size"
            )
        h, w = h // f, w // f
    net = SwinCifar(c, width, depths, heads, cfg.head_dim, cfg.window_size, scales, cfg.qkv_bias)
    return project(net, net.num_features, out_dim)
