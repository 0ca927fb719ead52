"""torchvision datasets as uint8 tensors: mnist, fashion_mnist, cifar10, cifar100, svhn.

Files live under `data.root` in torchvision's layout; torchvision downloads them when `data.download` is
on (and checks CIFAR/SVHN checksums). MNIST-like IDX files are read here, plain or gzip-compressed, so the
official `.gz` archives work as they are and Fashion-MNIST is also found in Debian's
`/usr/share/datasets/fashion-mnist` (package dataset-fashion-mnist), without a copy.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets
from torchvision.transforms.v2 import functional as TF

from nclab.components.data import DEBIAN_FASHION_MNIST, IDX_FILES, idx_dir, idx_path
from nclab.config import DataConfig
from nclab.data import Splits
from nclab.errors import DataError


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (LeCun's MNIST format): magic 0x0000 0800 + ndim, big-endian uint32 sizes, uint8 data."""
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise DataError(
            f"{path} is not a uint8 IDX file (magic {data[:4].hex()}); delete it and fetch it again"
        )
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    if len(data) - 4 - 4 * ndim != int(np.prod(shape)):
        raise DataError(
            f"{path} is truncated ({len(data)} bytes for shape {shape}); delete it and fetch it again"
        )
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _download(name: str, directory: Path, fetch, how: str) -> None:
    try:
        fetch()
    except (RuntimeError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{name}: download into {directory} failed ({reason}); {how}") from None


def _missing(name: str, directory: Path, how: str) -> DataError:
    return DataError(
        f"{name}: files not found or corrupted in {directory} and data.download=false; {how}, "
        "or set data.download=true on a machine with internet"
    )


def _mnist_like(cfg: DataConfig, cls: type[datasets.MNIST], name: str, stats, extra: list[Path]) -> Splits:
    raw = Path(cfg.root) / cls.__name__ / "raw"
    archives = ", ".join(f"{s}.gz" for pair in IDX_FILES.values() for s in pair)
    how = f"put the official archives ({archives}) in {raw}"
    if extra:
        how += " or install the Debian package dataset-fashion-mnist"
    found = idx_dir([raw, *extra])
    if found is None:
        if not cfg.download:
            raise _missing(name, raw, how)
        _download(name, raw, lambda: cls(cfg.root, train=True, download=True), how)
        found = raw

    def split(which: str) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = (torch.from_numpy(read_idx(idx_path(found, s)).copy()) for s in IDX_FILES[which])
        x = images.unsqueeze(1)
        if cfg.rgb32:  # the 2021 study: Resize(32) and Grayscale(3 channels)
            x = TF.resize(x, [32, 32], antialias=True).expand(-1, 3, -1, -1).contiguous()
        return x, labels.long()

    mean, std = stats
    channels = 3 if cfg.rgb32 else 1
    return Splits(*split("train"), *split("test"), 10, mean * channels, std * channels)


def _cifar_like(cfg: DataConfig, cls: type[datasets.CIFAR10], name: str, classes: int, stats) -> Splits:
    directory = Path(cfg.root) / cls.base_folder
    how = f"extract the official archive {cls.filename} ({cls.url}) in {cfg.root}"
    if cfg.download:
        _download(name, directory, lambda: cls(cfg.root, train=True, download=True), how)

    def split(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            ds = cls(cfg.root, train=train, download=False)
        except RuntimeError:
            raise _missing(name, directory, how) from None
        return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets)

    return Splits(*split(True), *split(False), classes, *stats)


def _svhn(cfg: DataConfig) -> Splits:
    directory = Path(cfg.root) / "SVHN"
    files = datasets.SVHN.split_list
    how = (
        f"put {files['train'][1]} and {files['test'][1]} "
        f"(http://ufldl.stanford.edu/housenumbers/, format 2) in {directory}"
    )

    def split(which: str) -> tuple[torch.Tensor, torch.Tensor]:
        if cfg.download:
            _download("svhn", directory, lambda: datasets.SVHN(directory, split=which, download=True), how)
        try:
            ds = datasets.SVHN(directory, split=which, download=False)
        except RuntimeError:
            raise _missing("svhn", directory, how) from None
        return torch.from_numpy(ds.data).contiguous(), torch.from_numpy(ds.labels).long()

    return Splits(*split("train"), *split("test"), 10, *SVHN_STATS)


MNIST_STATS = ((0.1307,), (0.3081,))
FASHION_MNIST_STATS = ((0.2860,), (0.3530,))
CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))  # the value all five studies used
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
SVHN_STATS = ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970))


def mnist(cfg: DataConfig, seed: int) -> Splits:
    return _mnist_like(cfg, datasets.MNIST, "mnist", MNIST_STATS, [])


def fashion_mnist(cfg: DataConfig, seed: int) -> Splits:
    return _mnist_like(
        cfg, datasets.FashionMNIST, "fashion_mnist", FASHION_MNIST_STATS, [DEBIAN_FASHION_MNIST]
    )


def cifar10(cfg: DataConfig, seed: int) -> Splits:
    return _cifar_like(cfg, datasets.CIFAR10, "cifar10", 10, CIFAR10_STATS)


def cifar100(cfg: DataConfig, seed: int) -> Splits:
    return _cifar_like(cfg, datasets.CIFAR100, "cifar100", 100, CIFAR100_STATS)


def svhn(cfg: DataConfig, seed: int) -> Splits:
    return _svhn(cfg)
