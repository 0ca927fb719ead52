"""Datasets that ship with a package: scikit-learn's 8x8 `digits` (1,797 images, 10 classes)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from nclab.config import DataConfig
from nclab.data import DATASETS, Splits


@DATASETS.register("digits")
def digits(cfg: DataConfig, seed: int) -> Splits:
    """Stratified seeded split; features standardised with the train split's per-pixel mean and std."""
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=cfg.test_fraction, stratify=y, random_state=seed
    )
    mean, std = x_tr.mean(0), x_tr.std(0)
    std[std == 0] = 1.0

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((a - mean) / std).float()

    return Splits(tensor(x_tr), torch.from_numpy(y_tr), tensor(x_te), torch.from_numpy(y_te), num_classes=10)
