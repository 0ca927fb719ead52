"""Seconds per measured epoch (train-split pass + test-split pass + metrics) for ResNet18 on CIFAR-10-shaped
random data: nclab's `measure` against the original method, same model, same data, same process.

Original (reference/seed-core.md A6, `validate_NC.py`): a forward pre-hook on `fc` captures the features;
pass 1 over train and over test sums features and adds each sample to its class sum in a Python loop with
one `.item()` per sample; pass 2 over train adds one d x d outer product per sample; float32; NC1 with
scipy.linalg.pinv; NC2-NC4 as Zhu et al. 2021. Three forward passes, O(N) host syncs.
nclab: `nclab.measure.measure` (one pass per split, streamed float64 statistics, every SPEC.md key plus
decision scores); on CUDA also under bf16 autocast with channels_last. Both read the same device-resident
batches (the original's CPU DataLoader is not timed, which favours the original).

    python benchmarks/measure_speed.py [--n 50000] [--batch 1024] [--device cpu|cuda] [--skip-original]
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext

import torch
import torchvision
from torch import nn

from baselines import original_measure, timed
from nclab.data.loader import DeviceLoader
from nclab.losses import CrossEntropy
from nclab.measure import Settings, measure

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


class Hooked(nn.Module):
    """torchvision ResNet18 returning (logits, features) via a forward pre-hook on fc; `head` is the fc."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.head = net, net.fc
        self.features: torch.Tensor | None = None
        net.fc.register_forward_pre_hook(lambda module, args: setattr(self, "features", args[0]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(x), self.features


def main() -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000 if cuda else 512, help="train samples (test: n/5)")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--skip-original", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    k, device = 10, torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    split = {}
    for name, n in (("train", args.n), ("test", max(args.n // 5, 2 * k))):
        x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
        split[name] = DeviceLoader(x, torch.arange(n) % k, args.batch, device, CIFAR_MEAN, CIFAR_STD)
    model = Hooked(torchvision.models.resnet18(num_classes=k)).to(device)
    model.train()
    with torch.no_grad():  # a few train-mode batches so BatchNorm's running statistics are not the init ones
        for x, _ in list(split["train"])[:3]:
            model(x)
    loss = CrossEntropy(k)
    variants = [("nclab fp32", torch.float32, nullcontext)]
    if args.device == "cuda":
        bf16 = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
        variants.append(("nclab bf16 + channels_last", torch.channels_last, bf16))
    print(
        f"device {args.device}, torch threads {torch.get_num_threads()}, N train {args.n}, batch {args.batch}"
    )
    print("| method | s / measured epoch | speed-up | nc1 | train_acc |")
    print("|---|---|---|---|---|")
    results = []
    for name, layout, context in variants:
        if layout is torch.channels_last:
            model = model.to(memory_format=torch.channels_last)
        with context():
            measure(
                model, loss, list(split["train"])[:1], None, Settings(k)
            )  # warm-up (kernels, allocator, cudnn)
            seconds, m = timed(measure, model, loss, split["train"], split["test"], k, device=args.device)
        results.append((name, seconds, m.record["nc1"], m.record["train_acc"]))
    if not args.skip_original:
        model = model.to(memory_format=torch.contiguous_format)
        seconds, out = timed(original_measure, model, split["train"], split["test"], k, device=args.device)
        results.insert(0, ("original (A6)", seconds, out["nc1"], out["train_acc"]))
    base = results[0][1]
    for name, seconds, nc1, acc in results:
        print(f"| {name} | {seconds:.3f} | {base / seconds:.1f}x | {nc1:.5g} | {acc:.4f} |")


if __name__ == "__main__":
    main()
