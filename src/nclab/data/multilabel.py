"""Multi-label datasets of Li et al. 2023 (NC_MLab), targets multi-hot float32 N x K (1.0 per label;
the original's 0.5/0.5 targets are the `pick_all_label` loss's `normalize=True`).

Composed sets `mlab_mnist`, `mlab_fashion_mnist`, `mlab_cifar10`: a 2S x 2S canvas (56 for 28x28 images,
64 for CIFAR). Single-label images: `single` per class, drawn without replacement; pairs: for each class
pair a < b, `pair` images of a and of b; a coin puts one in the bottom-right and the other in the
top-left quadrant, merged by the pixel-wise maximum. MNIST-like images are rolled circularly by
(d, r) in {0..S/4-1}^2 each and single-label images sit bottom-right; CIFAR images sit at a margin
o in {0..S/4-1} from their corner, and single-label images take a random corner. Order: singles
class-major, then pairs (0,1), (0,2), ..., as the original. Pixels in [0, 1], no mean/std (as the
original). Built once per seed and sizes, then read from `data.root/multilabel/`.

`svhn_multilabel`: SVHN format-1 house-number images resized to 32x32, labelled with their distinct
digits (9 classes, digit d -> d - 1), filtered as the original: drop digit sets containing 0, keep
sets of 2 or 3 digits, and single digits up to the first 543 per digit in file order.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import Tensor

from nclab.components.data import DATASETS, MultiLabelOptions, svhn_format1
from nclab.config import DataConfig
from nclab.data import IMAGENET_STATS, Splits
from nclab.errors import DataError

SVHN_SINGLE_CAP = 543


def place(images: Tensor, top: Tensor, left: Tensor, size: int) -> Tensor:
    """Images N x C x S x S on a zero canvas N x C x size x size with their top-left pixel at (top, left),
    wrapping around the edges (a circular roll)."""
    n, c, s, _ = images.shape
    rows = (top[:, None] + torch.arange(s)) % size
    cols = (left[:, None] + torch.arange(s)) % size
    canvas = images.new_zeros(n, c, size, size)
    canvas[torch.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]] = images.permute(0, 2, 3, 1)
    return canvas


def _corner(bottom_right: Tensor, s: int, rolled: bool, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """(top, left) of each image: MNIST-like quadrant + roll (d, r), or CIFAR corner with margin o."""
    n, shift = len(bottom_right), s // 4
    if rolled:
        d, r = torch.randint(shift, (2, n), generator=gen)
        return d + s * bottom_right, r + s * bottom_right
    o = torch.randint(shift, (n,), generator=gen)
    pos = torch.where(bottom_right, s - o, o)
    return pos, pos


def compose(
    x: Tensor, y: Tensor, num_classes: int, single: int, pair: int, rolled: bool, gen: torch.Generator
) -> tuple[Tensor, Tensor]:
    """(images N x C x 2S x 2S, multi-hot targets N x K) with N = K*single + K(K-1)/2*pair."""
    s = x.shape[-1]
    members = [(y == k).nonzero().squeeze(1) for k in range(num_classes)]

    def draw(k: int, n: int) -> Tensor:
        if len(members[k]) < n:
            raise DataError(
                f"class {k} has {len(members[k])} images, fewer than the {n} the composition draws"
            )
        return members[k][torch.randperm(len(members[k]), generator=gen)[:n]]

    classes = torch.arange(num_classes).repeat_interleave(single)
    first = torch.cat([draw(k, single) for k in range(num_classes)])
    pairs = list(itertools.combinations(range(num_classes), 2))
    a = torch.tensor([p[0] for p in pairs]).repeat_interleave(pair)
    b = torch.tensor([p[1] for p in pairs]).repeat_interleave(pair)
    drawn = [(draw(i, pair), draw(j, pair)) for i, j in pairs]
    ia = torch.cat([d[0] for d in drawn]) if drawn else first[:0]
    ib = torch.cat([d[1] for d in drawn]) if drawn else first[:0]

    corner = (
        torch.ones(len(first), dtype=torch.bool) if rolled else torch.rand(len(first), generator=gen) < 0.5
    )
    singles = place(x[first], *_corner(corner, s, rolled, gen), 2 * s)
    coin = torch.rand(len(ia), generator=gen) < 0.5
    doubles = torch.maximum(
        place(x[ia], *_corner(coin, s, rolled, gen), 2 * s),
        place(x[ib], *_corner(~coin, s, rolled, gen), 2 * s),
    )
    targets = torch.zeros(len(first) + len(ia), num_classes)
    targets[torch.arange(len(first)), classes] = 1.0
    targets[len(first) + torch.arange(len(ia)), a] = 1.0
    targets[len(first) + torch.arange(len(ia)), b] = 1.0
    return torch.cat([singles, doubles]), targets


def require_single_label_classes(splits: Splits, name: str) -> None:
    """One DataError line, before any run starts, if a class has no single-label sample in a split: the
    multi-label NC metrics (Li et al. 2023) are class statistics of the single-label samples."""
    for split, y in (("train", splits.train_y), ("test", splits.test_y)):
        single = y[(y > 0).sum(1) == 1]
        counts = torch.bincount(single.argmax(1), minlength=y.shape[1])
        missing = (counts == 0).nonzero().flatten().tolist()
        if missing:
            raise DataError(
                f"{name}: classes {missing} have no single-label {split} sample, and the multi-label NC "
                "metrics are measured on single-label samples; compose with data.single and "
                "data.test_single >= 1, or use files holding single-label images of every class"
            )


def _cache(cfg: MultiLabelOptions, name: str, seed: int) -> Path:
    m = cfg
    return (
        Path(cfg.root)
        / "multilabel"
        / f"{name}-s{seed}-{m.single}-{m.pair}-{m.test_single}-{m.test_pair}.safetensors"
    )


def _composed(cfg: MultiLabelOptions, seed: int, name: str, base: str) -> Splits:
    path = _cache(cfg, name, seed)
    if path.is_file():
        t = load_file(path)
        return Splits(t["train_x"], t["train_y"], t["test_x"], t["test_y"], t["train_y"].shape[1])
    src = DATASETS.get(base)(cfg.model_copy(update={"rgb32": False}), seed)
    m, rolled, gen = cfg, src.train_x.shape[1] == 1, torch.Generator().manual_seed(seed)
    train = compose(src.train_x, src.train_y, src.num_classes, m.single, m.pair, rolled, gen)
    test = compose(src.test_x, src.test_y, src.num_classes, m.test_single, m.test_pair, rolled, gen)
    _save(path, *train, *test)
    return Splits(*train, *test, src.num_classes)


def _save(path: Path, *tensors: Tensor) -> None:
    """Cache train_x, train_y, test_x, test_y in one safetensors file, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(dict(zip(["train_x", "train_y", "test_x", "test_y"], tensors, strict=True)), tmp)
    tmp.replace(path)


def mlab_mnist(cfg: MultiLabelOptions, seed: int) -> Splits:
    return _composed(cfg, seed, "mlab_mnist", "mnist")


def mlab_fashion_mnist(cfg: MultiLabelOptions, seed: int) -> Splits:
    return _composed(cfg, seed, "mlab_fashion_mnist", "fashion_mnist")


def mlab_cifar10(cfg: MultiLabelOptions, seed: int) -> Splits:
    return _composed(cfg, seed, "mlab_cifar10", "cifar10")


def svhn_filter(digit_sets: list[list[int]], cap: int = SVHN_SINGLE_CAP) -> list[int]:
    """Indices kept by NC_MLab's filter, in file order: no 0 among the digits, 1 to 3 distinct digits,
    single digits only up to the first `cap` of each digit."""
    kept, seen = [], dict.fromkeys(range(1, 10), 0)
    for i, digits in enumerate(digit_sets):
        distinct = set(digits)
        if 0 in distinct or not 1 <= len(distinct) <= 3:
            continue
        if len(distinct) == 1:
            (d,) = distinct
            if seen[d] >= cap:
                continue
            seen[d] += 1
        kept.append(i)
    return kept


def read_digit_struct(path: Path) -> tuple[list[str], list[list[int]]]:
    """File names and digit labels (10 read as 0) of an SVHN format-1 `digitStruct.mat` (MATLAB v7.3)."""
    import h5py

    with h5py.File(path, "r") as f:
        group = f["digitStruct"]
        names = ["".join(chr(c) for c in f[ref][()].ravel()) for ref in group["name"][:, 0]]
        labels = []
        for ref in group["bbox"][:, 0]:
            label = f[ref]["label"]
            values = (
                [f[r][()].item() for r in label[:, 0]] if label.dtype == h5py.ref_dtype else label[()].ravel()
            )
            labels.append([int(v) % 10 for v in values])
    return names, labels


def _svhn_split(directory: Path) -> tuple[Tensor, Tensor]:
    names, labels = read_digit_struct(directory / "digitStruct.mat")
    kept = svhn_filter(labels)
    images = np.stack(
        [
            np.asarray(Image.open(directory / names[i]).convert("RGB").resize((32, 32), Image.BILINEAR))
            for i in kept
        ]
    )
    targets = torch.zeros(len(kept), 9)
    for row, i in enumerate(kept):
        targets[row, [d - 1 for d in set(labels[i])]] = 1.0
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), targets


def svhn_multilabel(cfg: DataConfig, seed: int) -> Splits:
    directory = svhn_format1(cfg)
    path = Path(cfg.root) / "multilabel" / "svhn_multilabel.safetensors"
    if not path.is_file():
        missing = [s for s in ("train", "test") if not (directory / s / "digitStruct.mat").is_file()]
        if missing:
            raise DataError(
                f"svhn_multilabel: {directory}/{missing[0]}/digitStruct.mat not found (no download exists); "
                f"extract the official archives train.tar.gz and test.tar.gz "
                f"(http://ufldl.stanford.edu/housenumbers/, format 1) in {directory}"
            )
        _save(path, *_svhn_split(directory / "train"), *_svhn_split(directory / "test"))
    t = load_file(path)
    return Splits(t["train_x"], t["train_y"], t["test_x"], t["test_y"], 9, *IMAGENET_STATS)
