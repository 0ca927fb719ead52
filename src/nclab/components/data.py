"""Datasets by name: the `DATASETS` registry, what `nclab data` shows of each (`DatasetInfo`), the datasets'
own options, and the in-tree datasets declared with their builders (data/embedded.py, vision.py,
multilabel.py), which are imported on first use."""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, field_validator

from nclab.components.base import DataConfig
from nclab.registry import Registry

__all__ = ["DATASETS", "DATASET_INFO", "DIGITS", "DatasetInfo", "declare", "register"]


@dataclass(frozen=True)
class DatasetInfo:
    """What `nclab data list/info` shows without loading anything."""

    summary: str
    train: int | None  # None: known only after the first build
    test: int | None
    shape: tuple[int, ...]
    classes: int
    where: Callable[[DataConfig], str] = lambda cfg: "generated in memory"
    names: Callable[[DataConfig], Sequence[str]] = lambda cfg: ()  # class names for figures; () = unknown
    rgb32: bool = False  # MNIST-like: `data.rgb32` resizes to 32x32 and repeats to 3 channels
    # sizes depend on the options: `nclab data info` builds the set (cheap, cached)
    built_by_info: bool = False

    def input_shape(self, cfg: DataConfig) -> tuple[int, ...]:
        """The shape a model sees under `cfg` (3 x 32 x 32 for MNIST-like sets with `data.rgb32`)."""
        return (3, 32, 32) if self.rgb32 and cfg.rgb32 else self.shape


DATASETS: Registry = Registry("data", DataConfig)
DATASET_INFO: dict[str, DatasetInfo] = {}


def register(name: str, info: DatasetInfo, options: type[DataConfig] | None = None) -> Callable:
    """Decorator: dataset `name` with what `nclab data` shows and its own options (extending DataConfig)."""

    def deco(fn: Callable) -> Callable:
        DATASET_INFO[name] = info
        return DATASETS.register(name, options)(fn)

    return deco


def declare(name: str, builder: str, info: DatasetInfo, options: type[DataConfig] | None = None) -> None:
    """Dataset `name` built by `builder` ("module:function", imported on first use)."""
    DATASET_INFO[name] = info
    DATASETS.declare(name, builder, options, info.summary)


DIGITS = tuple(str(k) for k in range(10))
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_path(directory: Path, stem: str) -> Path | None:
    return next((p for p in (directory / stem, directory / f"{stem}.gz") if p.is_file()), None)


def idx_dir(directories: list[Path]) -> Path | None:
    """The first directory holding all four IDX files (plain or .gz)."""
    stems = [s for pair in IDX_FILES.values() for s in pair]
    return next((d for d in directories if all(idx_path(d, s) for s in stems)), None)


def svhn_format1(cfg: DataConfig) -> Path:
    return Path(cfg.root) / "SVHN" / "format1"


def _where(folder: str) -> Callable[[DataConfig], str]:
    return lambda cfg: str(Path(cfg.root) / folder)


def _fashion_where(cfg: DataConfig) -> str:
    own = Path(cfg.root) / "FashionMNIST" / "raw"
    return str(idx_dir([own, DEBIAN_FASHION_MNIST]) or own)


def _torchvision_names(cls: str) -> Callable[[DataConfig], list[str]]:
    """torchvision's class names: MNIST-like classes carry them; CIFAR reads them from the archive's meta
    file (as torchvision does), so they are known once the files are there."""

    def names(cfg: DataConfig) -> list[str]:
        dataset = getattr(importlib.import_module("torchvision.datasets"), cls)
        if hasattr(dataset, "classes"):
            return list(dataset.classes)
        path = Path(cfg.root) / dataset.base_folder / dataset.meta["filename"]
        if not path.is_file():
            return []
        with open(path, "rb") as f:
            return list(pickle.load(f, encoding="latin1")[dataset.meta["key"]])

    return names


class GaussianOptions(DataConfig):
    """K-class Gaussian mixture x = mu_y + N(0, I), means of norm `separation` in random directions."""

    classes: int = Field(10, ge=2, description="K, the number of mixture components")
    train_per_class: int = Field(500, ge=1, description="train samples per class")
    test_per_class: int = Field(100, ge=1, description="test samples per class")
    dim: int = Field(32, ge=1, description="input dimension")
    separation: float = Field(4.0, ge=0, description="norm of each class mean; the noise is N(0, I)")


class MultiLabelOptions(DataConfig):
    """Composition sizes of Li et al. 2023: 3100 single + 200 per class pair train, 800 + 50 test."""

    single: int = Field(3100, ge=0, description="train images per class with one label")
    pair: int = Field(200, ge=0, description="train images per pair of classes with two labels")
    test_single: int = Field(800, ge=0, description="test images per class with one label")
    test_pair: int = Field(50, ge=0, description="test images per pair of classes")


class TextOptions(DataConfig):
    """a text corpus as a token stream: each position is a sample, its class the next token"""

    corpus: str = Field(
        "kjv", description="kjv | fortunes | gcide (Debian packages) or the path of a text file"
    )
    tokenizer: str = Field("byte", description="byte | word | bpe:N (trained on the corpus) | hf:DIR (local)")
    word_min_count: int = Field(2, ge=1, description="word tokenizer: rarer words become <unk> (id 0)")
    context: int = Field(64, ge=1, description="T: tokens per window (the model's input length)")
    tokens: int | None = Field(None, ge=2, description="use the first N tokens of the corpus (null: all)")
    train_windows: int | None = Field(
        None, ge=1, description="training windows per epoch (null: train tokens / context, about one pass)"
    )
    test_fraction: float = Field(0.1, gt=0, lt=1, description="held-out share: the last tokens of the stream")

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer(cls, v: str) -> str:
        if v in ("byte", "word") or (v.startswith("hf:") and len(v) > 3):
            return v
        if v.startswith("bpe:") and v[4:].isdigit() and int(v[4:]) >= 258:
            return v
        raise ValueError("write byte, word, bpe:N (N >= 258) or hf:DIR")


def _digit_names(cfg: DataConfig) -> Sequence[str]:
    return DIGITS


def _names_of(base: str) -> Callable[[DataConfig], Sequence[str]]:
    return lambda cfg: DATASET_INFO[base].names(cfg)


EMBEDDED, VISION, MULTILABEL = "nclab.data.embedded", "nclab.data.vision", "nclab.data.multilabel"  # builders
declare(
    "digits",
    f"{EMBEDDED}:digits",
    DatasetInfo("scikit-learn 8x8 digits, standardised, seeded stratified split", 1437, 360, (64,), 10,
                names=_digit_names),
)  # fmt: skip
declare(
    "gaussian",
    f"{EMBEDDED}:gaussian",
    DatasetInfo("K-class Gaussian mixture: x = mu_y + N(0, I)", 5000, 1000, (32,), 10),
    GaussianOptions,
)
declare(
    "mnist",
    f"{VISION}:mnist",
    DatasetInfo("MNIST handwritten digits", 60000, 10000, (1, 28, 28), 10, _where("MNIST/raw"),
                _torchvision_names("MNIST"), rgb32=True),
)  # fmt: skip
declare(
    "fashion_mnist",
    f"{VISION}:fashion_mnist",
    DatasetInfo("Zalando Fashion-MNIST", 60000, 10000, (1, 28, 28), 10, _fashion_where,
                _torchvision_names("FashionMNIST"), rgb32=True),
)  # fmt: skip
declare(
    "cifar10",
    f"{VISION}:cifar10",
    DatasetInfo("CIFAR-10", 50000, 10000, (3, 32, 32), 10, _where("cifar-10-batches-py"),
                _torchvision_names("CIFAR10")),
)  # fmt: skip
declare(
    "cifar100",
    f"{VISION}:cifar100",
    DatasetInfo("CIFAR-100 (fine labels)", 50000, 10000, (3, 32, 32), 100, _where("cifar-100-python"),
                _torchvision_names("CIFAR100")),
)  # fmt: skip
declare(
    "svhn",
    f"{VISION}:svhn",
    DatasetInfo("SVHN cropped digits (format 2, digit 0 is label 0)", 73257, 26032, (3, 32, 32), 10,
                _where("SVHN"), _digit_names),
)  # fmt: skip
for _name, _base, _summary, _shape in [
    ("mlab_mnist", "mnist", "MNIST pairs on a 56x56 canvas (Li et al. 2023)", (1, 56, 56)),
    ("mlab_fashion_mnist", "fashion_mnist", "Fashion-MNIST pairs on a 56x56 canvas", (1, 56, 56)),
    ("mlab_cifar10", "cifar10", "CIFAR-10 pairs on a 64x64 canvas (Li et al. 2023)", (3, 64, 64)),
]:
    declare(
        _name,
        f"{MULTILABEL}:{_name}",
        DatasetInfo(_summary, 40000, 10250, _shape, 10, _where("multilabel"), _names_of(_base)),
        MultiLabelOptions,
    )
declare(
    "svhn_multilabel",
    f"{MULTILABEL}:svhn_multilabel",
    DatasetInfo("SVHN format-1 house numbers, 1-3 distinct digits (Li et al. 2023)", None, 11273,
                (3, 32, 32), 9, lambda cfg: str(svhn_format1(cfg))),
)  # fmt: skip
declare(
    "text",
    "nclab.data.text:text",
    DatasetInfo(
        "a text corpus (kjv, fortunes, gcide, a file) as next-token classes; K = the tokenizer's vocabulary "
        "(byte: 256; `nclab data info text data.tokenizer=...` counts the tokens)",
        None,
        None,
        (64, 256),
        256,
        where=_where("text"),
        built_by_info=True,
    ),
    TextOptions,
)
