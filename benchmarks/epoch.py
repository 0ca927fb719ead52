"""Seconds per training epoch with NC measured every epoch: nclab's settings (fp32 eager, bf16 +
channels_last, + torch.compile, + CUDA-graph step) against the original pipeline, same model, same data,
same process.

Original pipeline (reference/seed-core.md: the 2021/2022 scripts): torchvision DataLoader over PIL images
with RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor + Normalize, 4 workers, fp32, a host read of
the loss and accuracy each step, then the per-sample NC pass of validate_NC.py (`baselines.original_measure`)
over DataLoaders of the un-augmented train and test splits.
nclab: device-resident uint8 data with augmentation on the device, `nclab.step` (fused optimizer, autocast,
channels_last, compile, CUDA graph as set), `nclab.train._train_epoch`, and `nclab.measure.measure` in the
same precision (one pass per split, float64 statistics, every SPEC.md key). The first nclab epoch of each
setting is a warm-up (compilation, graph capture, cuDNN autotuning) and is reported apart.

Data: CIFAR-10-shaped uint8 images that carry their class (a per-class template under noise), so a short run
learns and `train_acc` shows a broken step.

    python benchmarks/epoch.py                                     # cuda: resnet18 at batch 128 and 512
    python benchmarks/epoch.py --models wide_resnet50,vit --epochs 1
    python benchmarks/epoch.py --device cpu --n 1024 --models resnet18 --settings fp32,bf16,compile
    python benchmarks/epoch.py --device cpu --n 64 --batches 32 --settings fp32 --set model.width=0.125
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from baselines import original_measure
from nclab.config import resolve
from nclab.data.loader import DeviceLoader
from nclab.losses import build_loss
from nclab.measure import Settings, measure
from nclab.models import build_model
from nclab.optim import build_optimizer, param_groups
from nclab.step import autocast, build_step, prepare_model
from nclab.train import _train_epoch

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
K = 10
MODELS = {
    "resnet18": ["model=resnet18", "model.stem=cifar"],
    "wide_resnet50": ["model=wide_resnet50", "model.width=1"],
    "vit": ["model=vit"],
}
SETTINGS = {  # name -> train.* overrides
    "fp32": [],
    "bf16": ["train.precision=bf16", "train.channels_last=true"],
    "compile": ["train.precision=bf16", "train.channels_last=true", "train.compile=default"],
    "graph": ["train.precision=bf16", "train.channels_last=true", "train.cuda_graph=true"],
    "compile+graph": [
        "train.precision=bf16", "train.channels_last=true", "train.compile=default", "train.cuda_graph=true",
    ],
}  # fmt: skip


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n x 32 x 32 x 3 uint8 images: 0.4 * a class template + 0.6 * uniform noise; labels cycle 0..K-1."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (K, 32, 32, 3))
    y = np.arange(n) % K
    x = 0.4 * templates[y] + 0.6 * rng.integers(0, 256, (n, 32, 32, 3))
    return x.astype(np.uint8), y.astype(np.int64)


class PilImages(Dataset):
    """The original scripts' input path: one PIL image per item through torchvision transforms."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform: T.Compose) -> None:
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


class OnDevice:
    """Re-iterable DataLoader whose batches are moved to the device (as the scripts' `.to(device)`)."""

    def __init__(self, loader: DataLoader, device: torch.device) -> None:
        self.loader, self.device = loader, device

    def __iter__(self):
        for x, y in self.loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def config(overrides: list[str], batch: int, device: torch.device, setting: list[str]):
    """`overrides`: the model's (a MODELS entry) and any --set."""
    return resolve(
        overrides=[*overrides, f"train.batch_size={batch}", f"train.device={device.type}", *setting]
    )


def original_epochs(overrides: list[str], data, batch: int, device: torch.device, epochs: int, workers: int):
    """Seconds per epoch (train + measured epoch) of the original pipeline; last epoch's numbers."""
    cfg = config(overrides, batch, device, [])
    torch.manual_seed(0)
    model = build_model(cfg, (3, 32, 32), K).to(device)
    loss_fn = build_loss(cfg.loss, K, model.feature_dim).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.optim.lr, momentum=cfg.optim.momentum)
    norm = [T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)]
    augment = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), *norm])
    pin = device.type == "cuda"

    def loader(x, y, transform, shuffle):
        ds = PilImages(x, y, transform)
        dl = DataLoader(
            ds, batch, shuffle=shuffle, num_workers=workers, pin_memory=pin, persistent_workers=True
        )
        return OnDevice(dl, device)

    (xtr, ytr), (xte, yte) = data
    train = loader(xtr, ytr, augment, True)
    measure_train, measure_test = (
        loader(xtr, ytr, T.Compose(norm), False),
        loader(xte, yte, T.Compose(norm), False),
    )
    times, out = [], {}
    for _ in range(epochs):
        sync(device)
        start = time.perf_counter()
        model.train()
        correct = seen = 0
        for x, y in train:
            optimizer.zero_grad()
            logits, h = model(x)
            loss = loss_fn.reduce(loss_fn.per_sample(logits, h, y))
            loss.backward()
            optimizer.step()
            loss.item()  # the scripts log the loss and accuracy every step
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
        out = original_measure(model, measure_train, measure_test, K) | {"step_acc": correct / seen}
        sync(device)
        times.append(time.perf_counter() - start)
    return times, out


def nclab_epochs(
    overrides: list[str], setting: list[str], data, batch: int, device: torch.device, epochs: int
):
    """(warm-up epoch seconds, timed epoch seconds, last record, peak memory in MiB) of one setting."""
    cfg = config(overrides, batch, device, setting)
    torch.manual_seed(0)
    model = build_model(cfg, (3, 32, 32), K).to(device)
    loss_fn = build_loss(cfg.loss, K, model.feature_dim).to(device)
    optimizer = build_optimizer(cfg.optim, param_groups(cfg, model, loss_fn))
    (xtr, ytr), (xte, yte) = data
    to_nchw = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    common = {"mean": CIFAR_MEAN, "std": CIFAR_STD, "channels_last": cfg.train.channels_last}
    xtr_d, ytr_d = to_nchw(xtr).to(device), torch.from_numpy(ytr).to(device)
    train = DeviceLoader(xtr_d, ytr_d, batch, device, shuffle=True, augment="crop_flip", **common)
    measure_train = DeviceLoader(xtr_d, ytr_d, 1024, device, **common)
    measure_test = DeviceLoader(to_nchw(xte), torch.from_numpy(yte), 1024, device, **common)
    prepare_model(model, cfg.train)
    step = build_step(model, loss_fn, optimizer, cfg.train)
    precision = autocast(cfg.train.precision, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    times, record = [], {}
    for epoch in range(1, epochs + 2):
        sync(device)
        start = time.perf_counter()
        model.train()
        _, step_acc = _train_epoch(step, train, epoch)
        with precision:
            record = measure(model, loss_fn, measure_train, measure_test, Settings(K)).record | {
                "step_acc": step_acc
            }
        sync(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return times[0], times[1:], record, peak


def main() -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--n", type=int, default=50_000 if cuda else 1024, help="train images (test: n/5)")
    parser.add_argument("--models", default="resnet18", help="comma-separated: " + ",".join(MODELS))
    parser.add_argument("--batches", default="128,512" if cuda else "128", help="train batch sizes")
    parser.add_argument("--settings", default=",".join(SETTINGS) if cuda else "fp32,bf16")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per setting (after 1 warm-up)")
    parser.add_argument("--baseline-epochs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=4, help="the original pipeline's DataLoader workers")
    parser.add_argument("--set", action="append", default=[], help="an override, e.g. model.width=0.125")
    args = parser.parse_args()
    device = torch.device(args.device)
    data = make_data(args.n, 0), make_data(max(args.n // 5, 2 * K), 1)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU x{torch.get_num_threads()}"
    print(f"device {name}, torch {torch.__version__}, N train {args.n}, test {len(data[1][0])}")
    print("| model | batch | pipeline | s / epoch (NC every epoch) | vs original | warm-up epoch (s) "
          "| peak GPU MiB | step_acc | train_acc | nc1 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model_name in args.models.split(","):
        for batch in [int(b) for b in args.batches.split(",")]:
            model = [*MODELS[model_name], *args.set]
            times, out = original_epochs(model, data, batch, device, args.baseline_epochs, args.workers)
            base = statistics.mean(times)
            print(f"| {model_name} | {batch} | original (DataLoader x{args.workers}, fp32, per-sample NC) "
                  f"| {base:.2f} | 1.0x | - | - | {out['step_acc']:.3f} | {out['train_acc']:.3f} "
                  f"| {out['nc1']:.4g} |", flush=True)  # fmt: skip
            for setting in args.settings.split(","):
                warm, timed, rec, peak = nclab_epochs(
                    model, SETTINGS[setting], data, batch, device, args.epochs
                )
                sec = statistics.mean(timed)
                print(f"| {model_name} | {batch} | nclab {setting} | {sec:.2f} | {base / sec:.1f}x "
                      f"| {warm:.1f} | {peak:.0f} | {rec['step_acc']:.3f} | {rec['train_acc']:.3f} "
                      f"| {rec['nc1']:.4g} |",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
