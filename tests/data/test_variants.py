"""Variants: balanced and long-tailed subsets, validation split, random labels stored in the run dir."""

import pytest
import torch
from safetensors.torch import load_file

from nclab.config import resolve
from nclab.data import load_dataset
from nclab.data.variants import profile
from nclab.errors import ConfigError, DataError
from nclab.runs import load
from nclab.train import train

BASE = ["data=gaussian", "data.classes=5", "data.train_per_class=40", "data.dim=4"]


def splits(*extra, seed=0):
    return load_dataset(resolve(None, [*BASE, *extra]).data, seed)


def test_profiles():
    assert profile(100, 3, "none", 10) == [100, 100, 100]
    assert profile(100, 3, "exp", 100) == [100, 10, 1]
    assert profile(100, 4, "step", 10) == [100, 100, 10, 10]


def test_per_class_is_balanced_seeded_and_not_the_first_n():
    s = splits("data.per_class=7")
    assert torch.bincount(s.train_y).tolist() == [7] * 5
    full = splits()
    rows = {tuple(r.tolist()) for r in s.train_x}
    assert rows <= {tuple(r.tolist()) for r in full.train_x}
    assert not torch.equal(s.train_x[:7], full.train_x[:7])  # a seeded permutation, not file order
    assert torch.equal(s.train_x, splits("data.per_class=7").train_x)
    assert not torch.equal(s.train_x, splits("data.per_class=7", seed=1).train_x)
    with pytest.raises(DataError, match="fewer than the 41"):
        splits("data.per_class=41")


def test_imbalance_exp_profile():
    s = splits("data.imbalance=exp", "data.imbalance_ratio=10")
    assert torch.bincount(s.train_y).tolist() == profile(40, 5, "exp", 10) == [40, 22, 12, 7, 4]


def test_val_fraction_is_stratified_and_disjoint():
    s = splits("data.val_fraction=0.25")
    assert torch.bincount(s.val_y).tolist() == [10] * 5 and torch.bincount(s.train_y).tolist() == [30] * 5
    both = torch.cat([s.train_x, s.val_x])
    assert len(torch.unique(both, dim=0)) == 200


def test_random_labels_permute_train_labels_only():
    s, true = splits("data.random_labels=true"), splits()
    assert torch.equal(s.train_x, true.train_x) and torch.equal(s.test_y, true.test_y)
    assert torch.bincount(s.train_y).tolist() == [40] * 5
    assert (s.train_y != true.train_y).float().mean() > 0.5
    assert torch.equal(s.train_y, splits("data.random_labels=true").train_y)


def test_variants_refuse_multilabel_data(tmp_path):
    from tests.data.test_multilabel import mlab_cfg

    cfg = mlab_cfg(tmp_path, "data.per_class=2")
    with pytest.raises(ConfigError, match="multi-label"):
        load_dataset(cfg, 0)


@pytest.mark.slow
def test_random_labels_are_stored_and_read_back(tmp_path):
    cfg = resolve(
        None,
        [
            *BASE,
            "data.random_labels=true",
            "data.val_fraction=0.2",
            "epochs=1",
            "model.width=8",
            f"out={tmp_path}",
            "name=r",
            "train.device=cpu",
        ],
    )
    run = train(cfg)
    stored = load_file(run.path / "labels.safetensors")["train_y"]
    assert torch.equal(stored, load_dataset(cfg.data, cfg.seed).train_y)
    assert 0.0 <= run.metrics()[-1]["val_acc"] <= 1.0
    # measure/resume read the stored labels, even if the generator would now give others
    changed = torch.roll(stored, 1)
    run.save_labels(changed)
    again = load_dataset(load(run.path).config().data, cfg.seed, load(run.path).labels())
    assert torch.equal(again.train_y, changed)
