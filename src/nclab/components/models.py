"""Models by name: the `MODELS` registry, each model's own options (extending config.ModelConfig, with the
model's real defaults) and the in-tree models declared with their builders (models/*.py), which are imported
on first use: `MODELS.get(name)(options, input_shape, out_dim) -> (backbone, feature_dim)`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from nclab.components.base import ModelConfig, positive_sizes
from nclab.registry import Registry

__all__ = ["MODELS"]

MODELS: Registry = Registry("model", ModelConfig)


class MLPOptions(ModelConfig):
    width: float = Field(256, gt=0, description="hidden units per layer (a whole number)")
    depth: int = Field(3, ge=1, description="hidden layers")
    batch_norm: bool = Field(True, description="BatchNorm1d after each hidden layer")


class ResNetOptions(ModelConfig):
    width: float = Field(
        1.0, gt=0, description="channel multiplier of every stage: round(64 w) * (1, 2, 4, 8)"
    )
    stem: Literal["cifar", "imagenet"] = Field(
        "cifar", description="cifar = 3x3 stride 1; imagenet = 7x7 stride 2 + max-pool"
    )


class WideResNetOptions(ResNetOptions):
    width: float = Field(
        2.0, gt=0, description="bottleneck inner width int(planes * width): 1 = ResNet50, 2 = WideResNet50-2"
    )


class ConvNetOptions(ModelConfig):
    width: float = Field(1.0, gt=0, description="channel multiplier of the three stages (32/64/128 x width)")


class PreActResNetOptions(ModelConfig):
    width: float = Field(1.0, gt=0, description="channel multiplier of every group (16..128 x width)")
    embed_dim: int = Field(2, ge=1, description="embedding (feature) dimension, 2 or 128 in the study")


class ViTOptions(ModelConfig):
    width: float = Field(192, gt=0, description="embedding dim (a whole number)")
    depth: int = Field(6, ge=1, description="transformer blocks")
    heads: int = Field(3, ge=1, description="attention heads")
    patch_size: int = Field(4, ge=1, description="patch size in pixels")
    head_dim: int | None = Field(
        None,
        ge=1,
        description="dim per head (default width/heads); heads x head_dim is the attention's inner dim, "
        "projected back to width (the BCE study: 10 x 64 on 512)",
    )
    mlp_dim: int | None = Field(
        None, ge=1, description="hidden units of each block's MLP (default 4 x width)"
    )
    qkv_bias: bool = Field(True, description="bias of the qkv map")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout after attention and in the MLP")
    emb_dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the patch + position embedding")


class SwinOptions(ModelConfig):
    width: float = Field(48, gt=0, description="embedding dim of stage 1 (a whole number), x2 per stage")
    depth: int | list[int] = Field(2, description="blocks per stage (3 stages), or a list, one per stage")
    heads: int = Field(3, ge=1, description="attention heads of stage 1, x2 per stage")
    patch_size: int = Field(2, ge=1, description="patch size in pixels")
    window_size: int = Field(4, ge=1, description="attention window in patches")

    _sizes = field_validator("depth")(positive_sizes)


class SwinCifarOptions(ModelConfig):
    width: float = Field(96, gt=0, description="embedding dim of stage 1 (a whole number), x2 per merge")
    depth: int | list[int] | None = Field(
        None, description="blocks per stage: a list, or n for [n, n, 6, 2] (default [2, 2, 6, 2])"
    )
    heads: int | list[int] = Field(3, description="heads per stage: a list, or n for n x 2^stage")
    head_dim: int = Field(32, ge=1, description="dim per head")
    qkv_bias: bool = Field(False, description="bias of the qkv map")
    window_size: int = Field(4, ge=1, description="attention window in patches")
    downscaling: list[int] | None = Field(
        None, description="patch-merge factor of each stage (default [2, 2, 2, 1]; the first is the patch)"
    )

    _sizes = field_validator("depth", "heads", "downscaling")(positive_sizes)


class GPTOptions(ModelConfig):
    """small causal transformer LM: pre-LN blocks, causal SDPA attention, learned positions"""

    width: int = Field(128, ge=1, description="d, the embedding and feature dimension")
    depth: int = Field(2, ge=1, description="transformer blocks")
    heads: int = Field(4, ge=1, description="attention heads (must divide width)")
    context: int = Field(256, ge=1, description="positions: the longest input the model takes")
    mlp_ratio: int = Field(4, ge=1, description="MLP hidden width / d")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on embeddings, attention and residuals")
    tie: bool = Field(True, description="the token embedding is the LM head's W (GPT-2); false: its own")


# (name, builder in nclab.models, options, description)
for _name, _builder, _options, _description in [
    ("mlp", "mlp:mlp", MLPOptions, "MLP of Zhu et al. 2021: depth x [Linear, BatchNorm, ReLU], d = width."),
    (
        "resnet18",
        "resnet:resnet18",
        ResNetOptions,
        "resnet18: BasicBlock x [2, 2, 2, 2], channels round(64 w) * (1, 2, 4, 8).",
    ),
    (
        "resnet34",
        "resnet:resnet34",
        ResNetOptions,
        "resnet34: BasicBlock x [3, 4, 6, 3], channels round(64 w) * (1, 2, 4, 8).",
    ),
    (
        "resnet50",
        "resnet:resnet50",
        ResNetOptions,
        "resnet50: Bottleneck x [3, 4, 6, 3], channels round(64 w) * (1, 2, 4, 8).",
    ),
    (
        "wide_resnet50",
        "wide_resnet:wide_resnet50",
        WideResNetOptions,
        "WideResNet50 of Zhou et al. 2022: ResNet50 with bottleneck width x width, d = 2048.",
    ),
    (
        "convnet",
        "convnet:convnet",
        ConvNetOptions,
        "Small CNN for MNIST-size data: conv stages 32/64/128 x width, d = 128 x width.",
    ),
    (
        "preact_resnet",
        "preact_resnet:preact_resnet",
        PreActResNetOptions,
        "Pre-activation ResNet of the standalone-center-loss study, d = embed_dim (2 or 128).",
    ),
    ("densenet121", "densenet:densenet121", None, "torchvision's DenseNet121 (ImageNet stem), d = 1024."),
    (
        "densenet121_cifar",
        "densenet:densenet121_cifar",
        None,
        "DenseNet121 for CIFAR (the BCE study's: growth 16, 3x3 stem), d = 512.",
    ),
    (
        "vit",
        "transformers:vit",
        ViTOptions,
        "Vision Transformer (timm) on small images, d = width (the BCE study's ViT with head_dim=64).",
    ),
    ("swin", "transformers:swin", SwinOptions, "Swin Transformer (timm), three stages, d = 4 x width."),
    (
        "swin_cifar",
        "transformers:swin_cifar",
        SwinCifarOptions,
        "The BCE study's CIFAR Swin-T (26,598,646 parameters at K = 10), d = 8 x width.",
    ),
    ("gpt", "gpt:gpt", GPTOptions, ""),
]:
    MODELS.declare(_name, f"nclab.models.{_builder}", _options, _description)
