"""`Splits`: what every dataset builder returns (tensors, classes, the normalisation to apply)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class Splits:
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    mean: tuple[float, ...] | None = None  # per-channel normalisation of uint8 images
    std: tuple[float, ...] | None = None
    val_x: Tensor | None = None  # held out of train by data.val_fraction
    val_y: Tensor | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    @property
    def multilabel(self) -> bool:
        return self.train_y.dim() == 2
