"""Classifier heads: logits z = W h + b on the penultimate features h."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class LinearHead(nn.Module):
    """Learnable linear classifier, with or without bias. With `bias_sign=-1` the stored bias parameter
    enters as z = W h - b (the BCE study's threshold convention); `.bias` is always the additive bias."""

    def __init__(self, dim: int, num_classes: int, bias: bool = True, bias_sign: int = 1) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, num_classes, bias=bias)
        self.bias_sign = bias_sign

    @property
    def weight(self) -> Tensor:
        return self.linear.weight

    @property
    def bias(self) -> Tensor | None:
        b = self.linear.bias
        return b if b is None or self.bias_sign == 1 else -b

    def forward(self, h: Tensor) -> Tensor:
        return F.linear(h, self.linear.weight, self.bias)
