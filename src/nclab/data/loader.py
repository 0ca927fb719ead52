"""Device-resident batches: the whole split lives on the device; an epoch is a seeded permutation and
batches are index gathers. uint8 images are scaled and normalised on the device, per batch."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from nclab.data import Splits


class DeviceLoader:
    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        device: torch.device,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        self.x = x.to(device)
        self.y = y.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        shape = (1, -1) + (1,) * (x.dim() - 2)
        self.mean = None if mean is None else torch.tensor(mean, device=device).view(shape)
        self.std = None if std is None else torch.tensor(std, device=device).view(shape)

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def prepare(self, x: Tensor) -> Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.x)
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=gen).to(self.x.device)
            self.epoch += 1
        else:
            order = torch.arange(n, device=self.x.device)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self.prepare(self.x[idx]), self.y[idx]


def loaders(
    splits: Splits, batch_size: int, eval_batch_size: int, device: torch.device, seed: int
) -> tuple[DeviceLoader, DeviceLoader, DeviceLoader]:
    """(shuffled train, un-shuffled train for measuring, test)."""
    norm = {"mean": splits.mean, "std": splits.std, "device": device}
    train = splits.train_x.to(device), splits.train_y.to(device)  # one copy shared by both train loaders
    return (
        DeviceLoader(*train, batch_size, shuffle=True, seed=seed, **norm),
        DeviceLoader(*train, eval_batch_size, **norm),
        DeviceLoader(splits.test_x, splits.test_y, eval_batch_size, **norm),
    )
