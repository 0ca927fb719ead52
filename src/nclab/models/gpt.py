"""`model=gpt`: a small causal transformer language model (the GPT-2 / nanoGPT layout).

Token and learned position embeddings, `depth` pre-LN blocks x + attn(LN(x)), x + MLP(LN(x)) with causal
multi-head attention through `F.scaled_dot_product_attention(is_causal=True)` and a 4x GELU MLP, a final
LayerNorm. The backbone returns h (B, T, d) after the final norm; `models.Classifier` flattens it to (B*T, d)
and nclab's head gives the logits z = h W^T + b, so every W metric reads the LM head. With `model.tie` the
token embedding *is* the head's W (one tensor, stored once as `head.weight`). Inputs are token ids (B, T);
the data's input shape is (T, V) (data=text), T at most `model.context` positions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nclab.components.models import GPTOptions
from nclab.errors import ConfigError

__all__ = ["GPT", "GPTOptions"]


class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(b, t, d)))


class Block(nn.Module):
    def __init__(self, d: int, heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, heads, dropout)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(
            nn.Linear(d, mlp_ratio * d), nn.GELU(), nn.Linear(mlp_ratio * d, d), nn.Dropout(dropout)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """ids (B, T) -> h (B, T, d) after the final LayerNorm. Tied: the embedding is the head's W, read from the
    head at every forward (`tie`), so the state dict holds it once."""

    takes_tokens = True  # parts.build_parts refuses token data for models without it

    def __init__(self, vocab: int, cfg: GPTOptions) -> None:
        super().__init__()
        d = cfg.width
        self.context = cfg.context
        self.wte = None if cfg.tie else nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(cfg.context, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio, cfg.dropout) for _ in range(cfg.depth))
        self.ln_f = nn.LayerNorm(d)
        self._tied: list[nn.Module] = []  # the head, outside the module tree (one copy of W in state_dict)
        for name, p in self.named_parameters():  # GPT-2 init; residual projections scaled by 1/sqrt(2 depth)
            if p.dim() == 2:
                std = (
                    0.02 / math.sqrt(2 * cfg.depth)
                    if name.endswith(("proj.weight", "mlp.2.weight"))
                    else 0.02
                )
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias") and "ln" not in name:
                nn.init.zeros_(p)

    def tie(self, head: nn.Module | None) -> None:
        """Called by `models.build_model` with the classifier head: with `model.tie` its W embeds tokens."""
        if self.wte is not None:
            return
        if head is None:
            raise ConfigError(
                "model.tie=true embeds tokens with the head's W; set model.tie=false for head.kind=none"
            )
        self._tied = [head]

    def forward(self, idx: Tensor) -> Tensor:
        t = idx.shape[1]
        if t > self.context:
            raise ConfigError(f"an input of {t} tokens is longer than model.context={self.context} positions")
        tok = self.wte(idx) if self.wte is not None else F.embedding(idx, self._tied[0].weight)
        x = self.drop(tok + self.wpe(torch.arange(t, device=idx.device)))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)


def gpt(cfg: GPTOptions, input_shape: tuple[int, ...], out_dim: int | None = None) -> tuple[nn.Module, int]:
    """Token data of shape (T, V) (data=text); T <= model.context."""
    if len(input_shape) != 2:
        raise ConfigError(
            "model=gpt reads token windows (data=text), but the data gives inputs of shape "
            f"{tuple(input_shape)}"
        )
    t, vocab = input_shape
    if t > cfg.context:
        raise ConfigError(
            f"data.context={t} is longer than model.context={cfg.context} positions; "
            f"set data.context <= {cfg.context} or model.context >= {t}"
        )
    if cfg.width % cfg.heads:
        raise ConfigError(f"model.heads={cfg.heads} must divide model.width={cfg.width}")
    if out_dim is not None:
        raise ConfigError("head.fixdim is not defined for model=gpt (its features are the LM head's input)")
    return GPT(vocab, cfg), cfg.width
