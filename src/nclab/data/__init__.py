"""Datasets by name: `DATASETS.get(name)(options, seed) -> Splits`, each declared with its options class
(extending config.DataConfig, the options every dataset takes) in components/data.py; `load_dataset` adds
the variants.

Every dataset arrives as tensors (images as uint8 N x C x H x W with per-channel mean/std to apply
on the device, tabular data as float32 N x D) so the loader can keep them on the device. Labels are
int64 class indices, or float32 N x K multi-hot rows for the multi-label sets.
"""

from __future__ import annotations

import os
from dataclasses import replace

from torch import Tensor

from nclab.components.data import DATASET_INFO, DATASETS, DIGITS, DatasetInfo, register
from nclab.config import DataConfig
from nclab.data.splits import Splits
from nclab.errors import ConfigError, DataError

__all__ = [
    "DATASETS", "DATASET_INFO", "DIGITS", "DatasetInfo", "Splits", "class_names", "load_dataset", "register",
]  # fmt: skip

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def class_names(cfg: DataConfig, num_classes: int) -> list[str]:
    """The dataset's class names for legends and the embedding projector; '0'..'K-1' when it has none (or
    they do not match K)."""
    info = DATASET_INFO.get(cfg.name)
    names = list(info.names(cfg)) if info else []
    return names if len(names) == num_classes else [str(k) for k in range(num_classes)]


def load_dataset(cfg: DataConfig, seed: int, labels: Tensor | None = None) -> Splits:
    """The named dataset, normalised as configured, with the variants of `cfg` applied (data/variants.py).

    `labels`: a run's stored random train labels (runs.Run.labels), used instead of drawing them again."""
    from nclab.data.variants import apply_variants, with_labels

    if os.path.isfile(cfg.root):
        raise DataError(f"data.root={cfg.root} is a file; give the directory that holds the datasets")

    splits = DATASETS.get(cfg.name)(cfg, cfg.data_seed(seed))
    if cfg.normalize == "none":
        splits = replace(splits, mean=None, std=None)
    elif cfg.normalize == "imagenet" and splits.train_x.dtype.is_floating_point is False:
        if splits.train_x.shape[1] != 3:
            raise ConfigError(
                f"data.normalize=imagenet needs 3-channel images; {cfg.name} has {splits.train_x.shape[1]}"
            )
        splits = replace(splits, mean=IMAGENET_STATS[0], std=IMAGENET_STATS[1])
    splits = apply_variants(splits, cfg, cfg.data_seed(seed))
    if cfg.random_labels and labels is not None:
        splits = with_labels(splits, labels)
    return splits
