"""Tiny datasets written in the true on-disk formats: MNIST IDX (gzip), CIFAR python pickles, SVHN .mat."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image
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
    root: Path, cls: type[datasets.CIFAR10], per_batch: int, classes: int, seed: int = 0, cyclic: bool = False
) -> np.ndarray:
    """The batch pickles (N x 3072 uint8 rows, R then G then B planes); returns the train rows. Labels are
    random, or 0, 1, ..., K-1, 0, ... in every file with `cyclic` (every class in every split)."""
    rng = np.random.default_rng(seed)
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    key = "labels" if cls is datasets.CIFAR10 else "fine_labels"
    rows = []
    for name, _ in cls.train_list + cls.test_list:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [i % classes for i in range(per_batch)] if cyclic else rng.integers(0, classes, per_batch)
        labels = [int(v) for v in labels]
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


def write_digit_struct(directory, labels):
    """An SVHN format-1 folder: <i>.png and digitStruct.mat (MATLAB v7.3 / HDF5 with object references)."""
    import h5py

    directory.mkdir(parents=True)
    with h5py.File(directory / "digitStruct.mat", "w") as f:
        refs = f.create_group("#refs#")
        names, boxes = [], []
        for i, digits in enumerate(labels, start=1):
            name = f"{i}.png"
            Image.fromarray(np.full((20, 40 + i, 3), 10 * i, np.uint8)).save(directory / name)
            names.append(refs.create_dataset(f"n{i}", data=np.array([[ord(c)] for c in name], np.uint16)).ref)
            box = refs.create_group(f"b{i}")
            if len(digits) == 1:
                box.create_dataset("label", data=np.array([[float(digits[0])]]))
            else:
                items = [
                    refs.create_dataset(f"b{i}_{j}", data=np.array([[float(d)]])).ref
                    for j, d in enumerate(digits)
                ]
                box.create_dataset("label", data=np.array(items, dtype=h5py.ref_dtype)[:, None])
            boxes.append(box.ref)
        group = f.create_group("digitStruct")
        group.create_dataset("name", data=np.array(names, dtype=h5py.ref_dtype)[:, None])
        group.create_dataset("bbox", data=np.array(boxes, dtype=h5py.ref_dtype)[:, None])
