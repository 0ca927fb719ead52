"""Small data means small (issue 25): `data.test_per_class` subsets the test split like `data.per_class`
the train split; `train.threads` (auto: by the step's work) sets torch's CPU threads for the run."""

import pytest
import torch

from nclab import threads
from nclab.config import resolve
from nclab.data import load_dataset
from nclab.errors import DataError
from nclab.models import build_model


def test_test_per_class_subsets_the_test_split():
    cfg = resolve(None, ["data.per_class=20", "data.test_per_class=5"])
    splits = load_dataset(cfg.data, cfg.seed)
    assert torch.bincount(splits.test_y).tolist() == [5] * 10
    assert torch.bincount(splits.train_y).tolist() == [20] * 10
    full = load_dataset(resolve(None, ["data.per_class=20"]).data, 0)
    assert all((full.test_x == x).all(1).any() for x in splits.test_x)  # a subset of the real test split
    again = load_dataset(cfg.data, cfg.seed)
    assert torch.equal(again.test_x, splits.test_x)  # seeded
    with pytest.raises(DataError, match="test images"):
        load_dataset(resolve(None, ["data.test_per_class=1000"]).data, 0)


def test_auto_threads_follow_the_step_work(monkeypatch):
    monkeypatch.setattr(threads, "DEFAULT_THREADS", 8)
    mlp = build_model(resolve(None, ["model.width=256", "model.depth=3"]), (64,), 10)
    resnet = build_model(resolve(None, ["model=resnet18"]), (3, 32, 32), 10)
    assert threads.step_flops(mlp, (64,), 128) < threads.WORK_PER_THREAD
    assert threads.choose_threads("auto", mlp, (64,), 128) == 1
    assert threads.choose_threads("auto", resnet, (3, 32, 32), 128) == 8  # 4e11 FLOPs: every core
    assert threads.choose_threads(3, mlp, (64,), 128) == 3
    assert mlp.training  # counting ran in eval mode and restored the mode


def test_a_run_uses_its_thread_count(tmp_path):
    from nclab.parts import build_parts

    before = torch.get_num_threads()
    try:
        build_parts(resolve(None, ["train.threads=2", "train.device=cpu"]))
        assert torch.get_num_threads() == 2
        build_parts(resolve(None, ["train.device=cpu"]))  # auto, the tiny default MLP: one thread
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
