"""Datasets by name: `DATASETS.get(name)(config, seed) -> Splits`.

Every dataset arrives as tensors (images as uint8 N x C x H x W with per-channel mean/std to apply
on the device, tabular data as float32 N x D) so the loader can keep them on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from nclab.config import DataConfig
from nclab.registry import Registry

__all__ = ["DATASETS", "Splits", "load_dataset"]


@dataclass
class Splits:
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    mean: tuple[float, ...] | None = None  # per-channel normalisation of uint8 images
    std: tuple[float, ...] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])


DATASETS: Registry = Registry("data")


def load_dataset(cfg: DataConfig, seed: int) -> Splits:
    return DATASETS.get(cfg.name)(cfg, seed)


from nclab.data import embedded  # noqa: E402, F401  (registers datasets)
