import os
from collections import Counter

# One thread in every test and in every process a test starts (CLI, torchrun, Ray workers): on a busy 2-core
# machine a tiny-MLP step is ~50x slower with two threads than with one. Set before torch is imported.
os.environ["OMP_NUM_THREADS"] = "1"

import pytest

SLOW_TIMEOUT = 600  # seconds; the ini default (pyproject.toml) holds for the rest


def pytest_collection_modifyitems(config, items):
    """A test marked slow and not given its own timeout gets SLOW_TIMEOUT; tests marked `cuda` are skipped
    where no CUDA device is visible. Modules with xdist_group tests (the longest units: one worker runs a
    group whole) come first, the most grouped first, so under `make test` they start early and neither
    worker waits alone at the end. torch is imported here, not at the top: xdist's controller loads this file
    too and needs no torch."""
    import torch

    torch.set_num_threads(1)  # module and session fixtures too (torch may have been imported before conftest)
    grouped = Counter(item.module for item in items if item.get_closest_marker("xdist_group"))
    items.sort(key=lambda item: -grouped[item.module])  # stable: each module stays in its order
    skip = None if torch.cuda.is_available() else pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))
        if skip and item.get_closest_marker("cuda"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """Two 3-epoch digits runs (differing in optim.lr); run `a` stores every epoch's full features."""
    from nclab.cli import main

    out = tmp_path_factory.mktemp("tiny")
    common = [f"out={out}", "epochs=3", "model.width=16", "model.depth=1", "--quiet"]
    full = ["measure.save_features_at=[1,2,3]", "measure.features_per_class=null"]
    assert main(["train", "name=a", *full, *common]) == 0
    b = ["optim.lr=0.1", "measure.save_features_at=[3]", "measure.features_per_class=10"]
    assert main(["train", "name=b", *b, *common]) == 0
    return out / "a", out / "b"


@pytest.fixture
def no_checksums(monkeypatch):
    """torchvision verifies CIFAR/SVHN files by MD5 of the official files; test files cannot match."""
    from torchvision import datasets

    for cls in (datasets.CIFAR10, datasets.CIFAR100):
        monkeypatch.setattr(cls, "train_list", [[n, None] for n, _ in cls.train_list])
        monkeypatch.setattr(cls, "test_list", [[n, None] for n, _ in cls.test_list])
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": None})
    monkeypatch.setattr(
        datasets.SVHN, "split_list", {k: [v[0], v[1], None] for k, v in datasets.SVHN.split_list.items()}
    )
