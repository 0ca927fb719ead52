"""Losses and the train epoch against plain baselines, same data, same process.

1. Forward + backward of every registered loss on one batch of logits and features, against
   `F.cross_entropy` (the cost a loss adds to a step).
2. One train epoch of an MLP: nclab's `_train_epoch` (loss summed on the device, non-finite check every
   64 steps) against the same loop reading the loss on the host every step (`loss.item()`, what the
   seed codes do for logging and what a naive per-step NaN check costs).

    python benchmarks/losses_speed.py [--batch 128] [--classes 100] [--dim 512] [--n 50000] [--device cuda]
"""

from __future__ import annotations

import argparse
import importlib
import time

import torch
import torch.nn.functional as F
from torch import nn

from nclab.config import LossConfig, TrainConfig
from nclab.data.loader import DeviceLoader
from nclab.losses import LOSSES, build_loss
from nclab.step import TrainStep

train_module = importlib.import_module("nclab.train")


def timed(fn, device: str, repeat: int) -> float:
    """Median seconds of fn() over `repeat` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def bench_losses(batch: int, k: int, d: int, device: str, repeat: int) -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(batch, k, generator=g).to(device).requires_grad_(True)
    h = torch.randn(batch, d, generator=g).to(device).requires_grad_(True)
    y = torch.randint(0, k, (batch,), generator=g).to(device)

    def step(fn):
        return lambda: torch.autograd.grad(fn(), (z, h), allow_unused=True)

    base = timed(step(lambda: F.cross_entropy(z, y)), device, repeat)
    print(f"loss forward+backward, batch {batch}, K {k}, d {d}, {device}")
    print(f"  {'F.cross_entropy (baseline)':28s} {base * 1e6:9.1f} us")
    for name in LOSSES.names():
        loss_fn = build_loss(LossConfig(name=name), k, d).to(device)
        t = timed(step(lambda loss_fn=loss_fn: loss_fn(z, h, y)), device, repeat)
        print(f"  {name:28s} {t * 1e6:9.1f} us   x{t / base:.2f}")


def per_step_item_epoch(model, loss_fn, optimizer, batches) -> float:
    """The baseline loop: the same steps, the loss read on the host every step."""
    model.train()
    total, n = 0.0, 0
    for x, y in batches:
        logits, h = model(x)
        loss = loss_fn(logits, h, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if value != value or abs(value) == float("inf"):
            raise RuntimeError("diverged")
        total += value * len(y)
        n += len(y)
    return total / n


def bench_epoch(n: int, batch: int, k: int, d: int, device: str, repeat: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 256, generator=g)
    y = torch.randint(0, k, (n,), generator=g)
    loader = DeviceLoader(x, y, batch, torch.device(device), shuffle=True)
    body = nn.Sequential(nn.Linear(256, d), nn.BatchNorm1d(d), nn.ReLU(), nn.Linear(d, d), nn.ReLU())
    head = nn.Linear(d, k)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.head = body, head

        def forward(self, inputs):
            features = self.body(inputs)
            return self.head(features), features

    model = Net().to(device)
    loss_fn = build_loss(LossConfig(), k, d).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    ours = timed(
        lambda: train_module._train_epoch(TrainStep(model, loss_fn, optimizer, TrainConfig()), loader, 1),
        device,
        repeat,
    )
    base = timed(lambda: per_step_item_epoch(model, loss_fn, optimizer, loader), device, repeat)
    steps = len(loader)
    print(f"train epoch, MLP 256-{d}-{d}-{k}, {n} samples, batch {batch} ({steps} steps), {device}")
    print(f"  per-step loss.item() (baseline)  {base * 1e3:8.1f} ms")
    print(f"  nclab _train_epoch               {ours * 1e3:8.1f} ms   baseline/nclab {base / ours:.2f}")


def main() -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--n", type=int, default=50_000 if cuda else 5_000)
    parser.add_argument("--repeat", type=int, default=20 if cuda else 5)
    args = parser.parse_args()
    torch.manual_seed(0)
    bench_losses(args.batch, args.classes, args.dim, args.device, args.repeat * 5)
    bench_epoch(args.n, args.batch, args.classes, args.dim, args.device, args.repeat)


if __name__ == "__main__":
    main()
