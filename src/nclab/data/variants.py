"""Variants of a dataset's train split, all seeded by the data seed, applied in this order:

1. a class-count profile: `per_class=N` (balanced: N per class) and/or `imbalance` (long-tailed:
   n_k = n_max * ratio^(-k/(K-1)) for `exp` (Cui et al. 2019), n_max/ratio for the second half of the
   classes for `step` (Buda et al. 2018)); each class keeps the first n_k of a seeded permutation of its
   images (the 2021 code took the first n in file order and divided by hard-coded counts);
2. `val_fraction`: a stratified held-out share of each class (Zhou et al. 2022 hold out 10%);
3. `random_labels`: a seeded permutation of the train labels (class counts kept, as the 2021 study's
   balanced relabelling); test and validation labels stay true, so their accuracy measures chance.
   The labels are stored in the run directory (`labels.safetensors`) and read back from there.

`test_per_class=N` keeps N images per class of the test split (the first N of a seeded permutation of each
class), so a small run also measures a small test split.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from nclab.config import DataConfig
from nclab.data.splits import Splits
from nclab.errors import ConfigError, DataError

_SUBSET, _VAL, _LABELS, _TEST = 1, 2, 3, 4  # a generator stream per variant: one leaves the others unchanged


def _generator(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 16 + stream)


def profile(n_max: int, num_classes: int, kind: str, ratio: float) -> list[int]:
    """Images per class of a balanced (`none`), exponential (`exp`) or two-step (`step`) profile."""
    if kind == "exp":
        return [max(1, int(n_max * ratio ** (-k / (num_classes - 1)))) for k in range(num_classes)]
    if kind == "step":
        return [
            n_max if k < math.ceil(num_classes / 2) else max(1, int(n_max / ratio))
            for k in range(num_classes)
        ]
    return [n_max] * num_classes


def class_subset(
    y: Tensor, counts: list[int], gen: torch.Generator, split: str = "train"
) -> tuple[Tensor, Tensor]:
    """(kept, rest): indices of the first counts[k] images of a seeded permutation of each class k, in
    dataset order, and the remaining indices."""
    order = torch.randperm(len(y), generator=gen)
    ys = y[order]
    keep = torch.zeros(len(y), dtype=torch.bool)
    for k, n in enumerate(counts):
        members = order[ys == k]
        if len(members) < n:
            raise DataError(f"class {k} has {len(members)} {split} images, fewer than the {n} requested")
        keep[members[:n]] = True
    return keep.nonzero().squeeze(1), (~keep).nonzero().squeeze(1)


def apply_variants(splits: Splits, cfg: DataConfig, seed: int) -> Splits:
    wanted = cfg.per_class is not None or cfg.imbalance != "none" or cfg.val_fraction > 0 or cfg.random_labels
    if not wanted and cfg.test_per_class is None:
        return splits
    if splits.multilabel:
        raise ConfigError(
            f"data.per_class, test_per_class, imbalance, val_fraction, random_labels need single-label data; "
            f"{cfg.name} is multi-label (its composition sizes are data.*)"
        )
    if cfg.test_per_class is not None:
        counts = [cfg.test_per_class] * splits.num_classes
        keep, _ = class_subset(splits.test_y, counts, _generator(seed, _TEST), "test")
        splits = replace(splits, test_x=splits.test_x[keep], test_y=splits.test_y[keep])
    if not wanted:
        return splits
    x, y, k = splits.train_x, splits.train_y, splits.num_classes
    if cfg.per_class is not None or cfg.imbalance != "none":
        n_max = cfg.per_class or int(torch.bincount(y, minlength=k).min())
        keep, _ = class_subset(
            y, profile(n_max, k, cfg.imbalance, cfg.imbalance_ratio), _generator(seed, _SUBSET)
        )
        x, y = x[keep], y[keep]
    if cfg.val_fraction > 0:
        counts = [int(n) for n in torch.bincount(y, minlength=k)]
        val_counts = [round(cfg.val_fraction * n) for n in counts]
        if any(n - v < 1 for n, v in zip(counts, val_counts, strict=True)):
            raise ConfigError(
                f"data.val_fraction={cfg.val_fraction} leaves a class without train images "
                f"(smallest class: {min(counts)}); use a smaller fraction such as 0.1"
            )
        val, train = class_subset(y, val_counts, _generator(seed, _VAL))
        splits = replace(splits, val_x=x[val], val_y=y[val])
        x, y = x[train], y[train]
    if cfg.random_labels:
        y = y[torch.randperm(len(y), generator=_generator(seed, _LABELS))]
    return replace(splits, train_x=x, train_y=y)


def with_labels(splits: Splits, stored: Tensor) -> Splits:
    """Replace the train labels by a run's stored ones (runs.Run.labels)."""
    if stored.shape != splits.train_y.shape:
        raise DataError(
            f"the run's labels.safetensors holds {len(stored)} labels but the configured train split has "
            f"{len(splits.train_y)}; the run's data settings changed since it was trained"
        )
    return replace(splits, train_y=stored)
