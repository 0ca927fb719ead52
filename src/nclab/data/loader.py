"""Batches without worker processes: the whole split lives on the device as uint8; an epoch is a seeded
permutation and batches are index gathers. Augmentation runs on the device, per batch, in the order of the
torchvision pipeline it replaces (RandomCrop(32, padding=4), RandomHorizontalFlip,
RandomRotation(`data.rotation`), ToTensor, Normalize), then timm's Mixup/CutMix turns labels into soft
targets for the loss.

Data that does not fit on the device (`data.resident=host`, or `auto` when it needs more than half the free
device memory) stays in host memory and a torch DataLoader gathers its batches; the rest is the same.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from nclab import distributed
from nclab.config import DataConfig
from nclab.data import Splits
from nclab.data.text import TokenSplits, token_loaders
from nclab.errors import ConfigError

if TYPE_CHECKING:
    from timm.data import Mixup


def crop_flip(x: Tensor, gen: torch.Generator, pad: int = 4) -> Tensor:
    """Zero-pad by `pad`, crop back to H x W at a uniform offset, flip horizontally with p = 1/2."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy, dx = torch.randint(2 * pad + 1, (2, n), device=x.device, generator=gen)
    rows = dy[:, None] + torch.arange(h, device=x.device)
    cols = dx[:, None] + torch.arange(w, device=x.device)
    flip = torch.rand(n, device=x.device, generator=gen) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    out = padded[torch.arange(n, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)  # N x C x H x W view of an N x H x W x C gather (channels-last memory)


def flip(x: Tensor, gen: torch.Generator) -> Tensor:
    """Flip each image horizontally with p = 1/2."""
    mask = torch.rand(len(x), device=x.device, generator=gen) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(-1), x)


def rotate(x: Tensor, gen: torch.Generator, degrees: float = 15.0) -> Tensor:
    """Rotate each float image by a uniform angle in [-degrees, degrees], nearest pixel, zero fill (as
    torchvision's RandomRotation defaults)."""
    angle = (torch.rand(len(x), device=x.device, generator=gen) * 2 - 1) * math.radians(degrees)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def build_mix(cfg: DataConfig, num_classes: int, multilabel: bool) -> Mixup | None:
    """timm's Mixup/CutMix for `data.mix`, mode `batch` (the BCE study's settings by default)."""
    if cfg.mix == "none":
        return None
    from timm.data import Mixup  # timm (and torchvision) load in seconds: only for runs that mix

    return Mixup(
        mixup_alpha=cfg.mixup_alpha if cfg.mix in ("mixup", "both") else 0.0,
        cutmix_alpha=cfg.cutmix_alpha if cfg.mix in ("cutmix", "both") else 0.0,
        prob=cfg.mix_prob,
        switch_prob=cfg.mix_switch_prob,
        label_smoothing=cfg.mix_smoothing,
        num_classes=num_classes,
        multi_label=multilabel,
    )


class _Gather(Dataset):
    """Host-resident fallback: each DataLoader key is a tensor of indices, gathered in a worker."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx: Tensor) -> tuple[Tensor, Tensor]:
        return self.x[idx], self.y[idx]


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
        augment: str = "none",
        rotation: float = 15.0,
        mix: Mixup | None = None,
        resident: bool = True,
        workers: int = 0,
        split: bool = False,
        channels_last: bool = False,
    ) -> None:
        if augment != "none" and (x.dim() != 4 or x.dtype != torch.uint8):
            raise ConfigError(
                f"data.augment={augment} needs uint8 images; this dataset has {x.dtype} {tuple(x.shape[1:])}"
            )
        if mix is not None and batch_size % 2:
            raise ConfigError(f"data.mix needs an even train.batch_size (timm mixes pairs), got {batch_size}")
        self.device = torch.device(device)
        self.x = x.to(self.device) if resident else (x.pin_memory() if self.device.type == "cuda" else x)
        self.y = y.to(self.device) if resident else y
        self.resident = resident
        self.workers = workers
        self.split = split  # under torchrun: this rank's part of each batch (shuffled) or of the split
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.augment = augment
        self.rotation = rotation
        self.mix = mix
        self.channels_last = channels_last and x.dim() == 4
        shape = (1, -1) + (1,) * (x.dim() - 2)
        self.mean = None if mean is None else torch.tensor(mean, device=self.device).view(shape)
        self.std = None if std is None else torch.tensor(std, device=self.device).view(shape)

    def state_dict(self) -> dict[str, int]:
        """The permutation stream's position: epoch e's order and augmentation generator are seeded by
        (seed, e), so the counter is the whole generator state."""
        return {"epoch": self.epoch, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.seed = state["epoch"], state["seed"]

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.mix is not None else -(-n // self.batch_size)

    def prepare(self, x: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """uint8 -> [0, 1] -> (augmented) -> normalised float, on the device."""
        if gen is not None and self.augment.startswith("crop_flip"):
            x = crop_flip(x, gen)
        elif gen is not None and self.augment.startswith("flip"):
            x = flip(x, gen)
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        if gen is not None and self.augment.endswith("rotate"):
            x = rotate(x, gen, self.rotation)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _batches(self, order: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
        stop = len(order) - len(order) % self.batch_size if self.mix is not None else len(order)
        keys = [order[i : min(i + self.batch_size, stop)] for i in range(0, stop, self.batch_size)]
        if self.split and self.shuffle:
            keys = [k[distributed.rank() :: distributed.world()] for k in keys]
        if self.resident:
            for idx in keys:
                yield self.x[idx], self.y[idx]
            return
        pin = self.device.type == "cuda"
        host = DataLoader(
            _Gather(self.x, self.y), batch_size=None, sampler=keys, num_workers=self.workers, pin_memory=pin
        )
        for x, y in host:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.x)
        gen = None
        if self.shuffle:
            seed = self.seed * 1_000_003 + self.epoch
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
            if self.augment != "none":
                stream = (
                    seed + 500_000_003 + (7_919 * distributed.rank() if self.split else 0)
                )  # own per rank
                gen = torch.Generator(device=self.device).manual_seed(stream)
            self.epoch += 1
        else:
            order = torch.arange(n)[distributed.shard(n) if self.split else slice(None)]
        if self.resident:
            order = order.to(self.device)
        for x, y in self._batches(order):
            x = self.prepare(x, gen)
            if self.mix is not None:
                x, y = self.mix(x, y)
            yield x, y


def fits_on(device: torch.device, *tensors: Tensor) -> bool:
    """True on the CPU; on a GPU when the tensors take at most half of its free memory."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return sum(t.nbytes for t in tensors) <= free // 2


def loaders(
    splits: Splits,
    batch_size: int,
    eval_batch_size: int,
    device: torch.device,
    seed: int,
    cfg: DataConfig | None = None,
    channels_last: bool = False,
) -> tuple[DeviceLoader, DeviceLoader, DeviceLoader]:
    """(shuffled, augmented train; un-shuffled, un-augmented train for measuring; test); images come out in
    channels-last memory when `channels_last`. Token streams (data=text) get `text.token_loaders`."""
    if isinstance(splits, TokenSplits):
        return token_loaders(splits, batch_size, eval_batch_size, device, seed, cfg.train_windows)
    cfg = cfg or DataConfig()
    tensors = [t for t in (splits.train_x, splits.test_x, splits.val_x) if t is not None]
    resident = cfg.resident == "device" or (cfg.resident == "auto" and fits_on(device, *tensors))
    norm = {
        "split": distributed.world() > 1,
        "mean": splits.mean,
        "std": splits.std,
        "device": device,
        "resident": resident,
        "workers": cfg.workers,
        "channels_last": channels_last,
    }
    train = splits.train_x, splits.train_y
    if resident:  # one device copy shared by both train loaders
        train = splits.train_x.to(device), splits.train_y.to(device)
    mix = build_mix(cfg, splits.num_classes, splits.multilabel)
    return (
        DeviceLoader(
            *train,
            batch_size,
            shuffle=True,
            seed=seed,
            augment=cfg.augment,
            rotation=cfg.rotation,
            mix=mix,
            **norm,
        ),
        DeviceLoader(*train, eval_batch_size, **norm),
        DeviceLoader(splits.test_x, splits.test_y, eval_batch_size, **norm),
    )


def eval_loader(x: Tensor, y: Tensor, splits: Splits, batch_size: int, like: DeviceLoader) -> DeviceLoader:
    """An un-shuffled, un-augmented loader over (x, y) (e.g. the validation split), placed like `like`."""
    return DeviceLoader(
        x, y, batch_size, like.device, splits.mean, splits.std, resident=like.resident, workers=like.workers,
        channels_last=like.channels_last,
    )  # fmt: skip
