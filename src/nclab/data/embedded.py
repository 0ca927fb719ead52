"""Datasets built without files: scikit-learn's 8x8 `digits` (1,797 images, 10 classes) and `gaussian`,
a seeded K-class Gaussian mixture."""

from __future__ import annotations

import numpy as np
import torch

from nclab.components.data import GaussianOptions
from nclab.config import DataConfig
from nclab.data import Splits


def digits(cfg: DataConfig, seed: int) -> Splits:
    """Stratified seeded split; features standardised with the train split's per-pixel mean and std."""
    from sklearn.datasets import load_digits  # scikit-learn (1.5 s of imports) for digits alone, not gaussian
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=cfg.test_fraction, stratify=y, random_state=seed
    )
    mean, std = x_tr.mean(0), x_tr.std(0)
    std[std == 0] = 1.0

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((a - mean) / std).float()

    return Splits(tensor(x_tr), torch.from_numpy(y_tr), tensor(x_te), torch.from_numpy(y_te), num_classes=10)


def gaussian(cfg: GaussianOptions, seed: int) -> Splits:
    """Class means mu_k = separation * u_k, u_k uniform on the unit sphere of R^dim; x = mu_y + e,
    e ~ N(0, I).
    Train and test share the means; labels are class-major (the loader shuffles)."""
    g = cfg
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(g.classes, g.dim, generator=gen)
    means = g.separation * means / means.norm(dim=1, keepdim=True)

    def sample(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(g.classes).repeat_interleave(per_class)
        return means[y] + torch.randn(len(y), g.dim, generator=gen), y

    return Splits(*sample(g.train_per_class), *sample(g.test_per_class), num_classes=g.classes)
