"""The generated datasets: gaussian mixture geometry and seeding."""

import torch

from nclab.config import resolve
from nclab.data import load_dataset


def gaussian(*extra, seed=0):
    cfg = resolve(
        None,
        [
            "data=gaussian",
            "data.classes=4",
            "data.train_per_class=50",
            "data.test_per_class=10",
            "data.dim=8",
            *extra,
        ],
    )
    return load_dataset(cfg.data, seed)


def test_gaussian_shapes_counts_and_seed():
    s = gaussian()
    assert s.train_x.shape == (200, 8) and s.test_x.shape == (40, 8) and s.num_classes == 4
    assert torch.bincount(s.train_y).tolist() == [50] * 4 and s.train_x.dtype == torch.float32
    assert torch.equal(s.train_x, gaussian().train_x)
    assert not torch.equal(s.train_x, gaussian(seed=1).train_x)
    assert torch.equal(s.train_x, gaussian("data.seed=0", seed=5).train_x)  # data.seed overrides the run seed


def test_gaussian_separation_sets_the_class_mean_norm():
    s = gaussian("data.separation=20", "data.train_per_class=2000")
    means = torch.stack([s.train_x[s.train_y == k].mean(0) for k in range(4)])
    assert torch.allclose(means.norm(dim=1), torch.full((4,), 20.0), atol=0.2)
    within = (s.train_x - means[s.train_y]).var(0)
    assert torch.allclose(within, torch.ones(8), atol=0.1)  # unit-variance noise
