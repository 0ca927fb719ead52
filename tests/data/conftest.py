"""Tiny datasets written in the true on-disk formats: MNIST IDX (gzip), CIFAR python pickles, SVHN .mat."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from torchvision import datasets


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_mnist(directory: Path, n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The four official archives; labels cycle 0..9, images random."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        arrays[f"{prefix}-images-idx3-ubyte"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{prefix}-labels-idx1-ubyte"] = (np.arange(n) % 10).astype(np.uint8)
    for stem, array in arrays.items():
        write_idx(directory / f"{stem}.gz", array)
    return arrays


def write_cifar(
    root: Path, cls: type[datasets.CIFAR10], per_batch: int, classes: int, seed: int = 0
) -> np.ndarray:
    """The batch pickles (N x 3072 uint8 rows, R then G then B planes); returns the train rows."""
    rng = np.random.default_rng(seed)
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    key = "labels" if cls is datasets.CIFAR10 else "fine_labels"
    rows = []
    for name, _ in cls.train_list + cls.test_list:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, classes, per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, key: labels}, f)
        if name in dict(cls.train_list):
            rows.append((data, labels))
    with open(folder / cls.meta["filename"], "wb") as f:
        pickle.dump({cls.meta["key"]: [f"c{i}" for i in range(classes)]}, f)
    return rows


def write_svhn(directory: Path, n: int, seed: int = 0) -> dict[str, dict]:
    """train_32x32.mat and test_32x32.mat: X is 32 x 32 x 3 x N, y is N x 1 with 10 for digit 0."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    out = {}
    for split in ("train", "test"):
        mat = {
            "X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
            "y": (np.arange(n) % 10 + 1)[:, None],
        }
        scipy.io.savemat(directory / f"{split}_32x32.mat", mat)
        out[split] = mat
    return out


@pytest.fixture
def no_checksums(monkeypatch):
    """torchvision verifies CIFAR/SVHN files by MD5 of the official files; test files cannot match."""
    for cls in (datasets.CIFAR10, datasets.CIFAR100):
        monkeypatch.setattr(cls, "train_list", [[n, None] for n, _ in cls.train_list])
        monkeypatch.setattr(cls, "test_list", [[n, None] for n, _ in cls.test_list])
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": None})
    monkeypatch.setattr(
        datasets.SVHN, "split_list", {k: [v[0], v[1], None] for k, v in datasets.SVHN.split_list.items()}
    )
