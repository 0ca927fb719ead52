"""Classifier heads: logits z = W h + b on the penultimate features h."""

from __future__ import annotations

from torch import Tensor, nn


class LinearHead(nn.Module):
    """Learnable linear classifier, with or without bias."""

    def __init__(self, dim: int, num_classes: int, bias: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, num_classes, bias=bias)

    @property
    def weight(self) -> Tensor:
        return self.linear.weight

    @property
    def bias(self) -> Tensor | None:
        return self.linear.bias

    def forward(self, h: Tensor) -> Tensor:
        return self.linear(h)
