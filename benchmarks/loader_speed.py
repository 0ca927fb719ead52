"""Images/s of nclab's device-resident loader with crop_flip against torchvision's DataLoader with the same
transforms (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize) and 4 workers, on the
same CIFAR-10-shaped synthetic uint8 data, in one process. Both deliver normalised float batches on --device.

    python benchmarks/loader_speed.py --n 10000 --device cpu          # CPU
    python benchmarks/loader_speed.py                                 # GPU defaults when CUDA is present
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from nclab.data.loader import DeviceLoader

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


class PILImages(Dataset):
    """The seeds' pipeline: HWC uint8 array -> PIL image -> transforms, one sample at a time."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform) -> None:
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def epoch_rate(batches, device: torch.device, n: int) -> float:
    sync(device)
    t = time.perf_counter()
    seen = 0
    for x, y in batches:
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        seen += len(y)
    sync(device)
    assert seen == n
    return n / (time.perf_counter() - t)


def main() -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--n", type=int, default=50000 if cuda else 10000, help="images (CIFAR-10 train: 50000)"
    )
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch each")
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.n, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, args.n)

    ours = DeviceLoader(
        torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(y),
        args.batch,
        device,
        MEAN,
        STD,
        shuffle=True,
        augment="crop_flip",
    )
    transform = v2.Compose(
        [
            v2.RandomCrop(32, padding=4),
            v2.RandomHorizontalFlip(),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )
    theirs = DataLoader(
        PILImages(x, y, transform),
        args.batch,
        shuffle=True,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.workers > 0,
    )
    rates = {}
    for name, loader in (
        ("nclab DeviceLoader", ours),
        (f"torch DataLoader ({args.workers} workers)", theirs),
    ):
        epoch_rate(loader, device, args.n)  # warm-up: worker start, CUDA context, allocator
        rates[name] = max(epoch_rate(loader, device, args.n) for _ in range(args.epochs))
    print(f"device {device}, {args.n} images 3x32x32, batch {args.batch}, crop_flip + normalise")
    for name, rate in rates.items():
        print(f"{name:34s} {rate:12,.0f} images/s")
    a, b = rates.values()
    print(f"speed-up: {a / b:.1f}x")


if __name__ == "__main__":
    main()
