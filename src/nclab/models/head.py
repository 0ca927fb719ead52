"""Classifier heads: logits z = W h + s b on the penultimate features h (W: K x d, b: K), s = `head.bias_sign`
(+1; -1 is the BCE study's z = W h - b, the bias read as a threshold). `additive_bias` gives s b, the bias in
the z = W h + b form the metrics use.

- learnable: `nn.Linear` (W kaiming-uniform; the bias as `head.bias_init` says);
- fixed simplex ETF (Zhu et al. 2021; SPEC.md): W = sqrt(K/(K-1)) (I_K - 11^T/K) P^T with P a random d x K
  matrix with orthonormal columns drawn from the run seed, so W W^T = K/(K-1) (I_K - 11^T/K): unit-norm rows
  with pairwise cosine -1/(K-1). W is a buffer (in checkpoints, never trained); the bias stays trainable.
  Unlike the 2021 code (W = [M | 0], only the first K feature coordinates used), P spreads W over all d.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nclab.config import HeadConfig
from nclab.errors import ConfigError

__all__ = [
    "ETFHead",
    "LinearHead",
    "additive_bias",
    "bias_pattern",
    "build_head",
    "linear_classifier",
    "simplex_etf",
]


class LinearHead(nn.Linear):
    """Learnable linear classifier z = W h + s b, with or without bias."""

    def __init__(self, dim: int, num_classes: int, bias: bool = True, bias_sign: int = 1) -> None:
        super().__init__(dim, num_classes, bias=bias)
        self.bias_sign = bias_sign

    def forward(self, h: Tensor) -> Tensor:
        return F.linear(h, self.weight, additive_bias(self))


class ETFHead(nn.Module):
    """Fixed simplex-ETF classifier: `weight` is a buffer, `bias` (if any) a trainable parameter."""

    weight: Tensor

    def __init__(self, weight: Tensor, bias: bool = True, bias_sign: int = 1) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.bias = nn.Parameter(torch.zeros(weight.shape[0])) if bias else None
        self.bias_sign = bias_sign

    def forward(self, h: Tensor) -> Tensor:
        return F.linear(h, self.weight, additive_bias(self))


def additive_bias(head: nn.Module) -> Tensor | None:
    """s b: the bias as it enters z = W h + b."""
    bias = getattr(head, "bias", None)
    return bias if bias is None or getattr(head, "bias_sign", 1) == 1 else -bias


def linear_classifier(head: nn.Module | None) -> tuple[Tensor | None, Tensor | None, int]:
    """(W, b, bias_sign) of a head with logits = W h + b, detached, for the metrics; the stored bias parameter
    is bias_sign * b (the BCE study's z = W h - b has bias_sign -1). W is None without a linear classifier
    (no head, or a head without `weight`)."""
    weight = getattr(head, "weight", None)
    if weight is None:
        return None, None, 1
    bias = additive_bias(head)
    return weight.detach(), None if bias is None else bias.detach(), int(getattr(head, "bias_sign", 1))


def simplex_etf(num_classes: int, dim: int, seed: int) -> Tensor:
    """sqrt(K/(K-1)) (I - 11^T/K) P^T, P (d x K) with orthonormal columns from QR of a seeded Gaussian."""
    k = num_classes
    if dim < k:
        raise ConfigError(
            f"head.fixed=etf needs feature dimension d >= K, got d={dim} < K={k}; "
            "use head.fixdim=true (d = K) or a wider model"
        )
    gen = torch.Generator(device="cpu").manual_seed(seed)
    p, _ = torch.linalg.qr(torch.randn(dim, k, generator=gen, dtype=torch.float64, device="cpu"))
    m = math.sqrt(k / (k - 1)) * (torch.eye(k, dtype=torch.float64, device="cpu") - 1.0 / k)
    return (m @ p.T).float()


def bias_pattern(mode: str, num_classes: int) -> Tensor:
    """The BCE study's structured initial biases (Li et al. 2025, models/linear.py, modes 1-7), k = 0..K-1:
    index b_k = k; ramp 64 k / K; log ln(96 k + 1); `_reversed` the same read from k = K-1 down;
    quarters ln(96 K) on k in [0, K//4) and [K//2, 3K//4), 0 elsewhere; quarters_reversed the complement."""
    k = torch.arange(num_classes, dtype=torch.float64, device="cpu")
    base, reverse = mode.removesuffix("_reversed"), mode.endswith("_reversed")
    if base == "quarters":
        q = num_classes // 4, num_classes // 2, 3 * num_classes // 4
        high = ((k < q[0]) | ((k >= q[1]) & (k < q[2]))) != reverse
        return (high * math.log(96 * num_classes)).float()
    values = {"index": k, "ramp": 64 * k / num_classes, "log": torch.log(96 * k + 1)}[base]
    return (values.flip(0) if reverse else values).float()


def _init_bias(bias: Tensor, cfg: HeadConfig, dim: int) -> None:
    """zero; constant (bias_mean); normal(bias_mean, bias_std); uniform: U(-1/sqrt(d), 1/sqrt(d)) + bias_mean,
    i.e. nn.Linear's default shifted as the BCE study's `bias_init_mean` does; its other modes
    (`bias_pattern`) + bias_mean likewise."""
    with torch.no_grad():
        if cfg.bias_init == "zero":
            bias.zero_()
        elif cfg.bias_init == "constant":
            bias.fill_(cfg.bias_mean)
        elif cfg.bias_init == "normal":
            bias.normal_(cfg.bias_mean, cfg.bias_std)
        elif cfg.bias_init == "uniform":
            bound = 1 / math.sqrt(dim)
            bias.uniform_(-bound, bound).add_(cfg.bias_mean)
        else:
            bias.copy_(bias_pattern(cfg.bias_init, len(bias)) + cfg.bias_mean)


def build_head(cfg: HeadConfig, dim: int, num_classes: int, seed: int) -> LinearHead | ETFHead:
    if num_classes < 2:
        raise ConfigError(f"a classifier needs at least 2 classes, got K={num_classes}")
    if cfg.fixed == "etf":
        head: LinearHead | ETFHead = ETFHead(simplex_etf(num_classes, dim, seed), cfg.bias, cfg.bias_sign)
    else:
        head = LinearHead(dim, num_classes, bias=cfg.bias, bias_sign=cfg.bias_sign)
    if head.bias is not None:
        _init_bias(head.bias, cfg, dim)
    return head
