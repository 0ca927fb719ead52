"""Peak resident memory of a measurement at large K (issue 22): nothing N x K may be held, whatever the path.

Three paths, each in a fresh process, on the same random data (float32 features and W, Gaussian class
means, `--per-class` train samples and half as many test samples per class):
- `oneshot`: `nc_metrics(h, y, W, b, test_h, test_y)`, each split one batch through the accumulator;
- `stream`: `NCAccumulator` fed `--batch` rows at a time, then `stream_metrics` (train and test keys);
- `epoch`: `measure_epoch` on a model that returns its input as the features: the stream path plus the
  decision scores, uniform accuracy, compactness and the per-class arrays of a measured epoch.
Reported: wall time and peak RSS (ru_maxrss) minus the resident size once torch, nclab and the inputs are
loaded. Goal (issue 22): at most 1.5 GB above the inputs at K = 20,000.

    nice python benchmarks/metrics_memory.py                       # K=20000, d=64, N=40000 (+20000 test)
    nice python benchmarks/metrics_memory.py --classes 5000 --dim 128
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import torch
from torch import Tensor, nn

from nclab.metrics import NCAccumulator, nc_metrics, stream_metrics
from nclab.metrics.epoch import Head, Settings, measure_epoch

PATHS = ("oneshot", "stream", "epoch")


class Identity(nn.Module):
    """(logits, h) = (None, x): the batches are the features themselves."""

    def forward(self, x: Tensor) -> tuple[None, Tensor]:
        return None, x


def problem(k: int, d: int, per_class: int) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    means = torch.randn(k, d, generator=g)

    def split(m: int) -> tuple[Tensor, Tensor]:
        y = torch.arange(k).repeat(m)[torch.randperm(k * m, generator=g)]
        return means[y] + 0.5 * torch.randn(len(y), d, generator=g), y

    (h, y), (ht, yt) = split(per_class), split(max(1, per_class // 2))
    return h, y, ht, yt, torch.randn(k, d, generator=g), torch.randn(k, generator=g)


def measure(path: str, h, y, ht, yt, w, b, k: int, batch: int) -> dict:
    if path == "oneshot":
        return nc_metrics(h, y, w, b, ht, yt)

    def batches(x: Tensor, labels: Tensor) -> list[tuple[Tensor, Tensor]]:
        return [(x[s : s + batch], labels[s : s + batch]) for s in range(0, len(labels), batch)]

    if path == "epoch":
        settings = Settings(k, score_samples=2000)
        return measure_epoch(
            Identity(), batches(h, y), batches(ht, yt), settings, classifier=Head(w, b)
        ).record
    train = NCAccumulator(k, w, b, keep_features=True)
    for hb, yb in batches(h, y):
        train.update(hb, yb)
    test = NCAccumulator(k, w, b, ncc_means=train.stats().centres())
    for hb, yb in batches(ht, yt):
        test.update(hb, yb)
    return stream_metrics(train, test)


def child(path: str, args: argparse.Namespace, queue: mp.Queue) -> None:
    torch.set_num_threads(args.threads)
    data = problem(args.classes, args.dim, args.per_class)
    with open("/proc/self/statm") as f:  # resident now: the process, torch, nclab and the inputs
        before = int(f.read().split()[1]) * resource.getpagesize()
    start = time.perf_counter()
    out = measure(path, *data, args.classes, args.batch)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    queue.put((seconds, peak / 1e9, out["nc1"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--per-class", type=int, default=2, help="train samples per class (test: half)")
    parser.add_argument(
        "--batch", type=int, default=1024, help="rows per batch of the stream and epoch paths"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--paths", default=",".join(PATHS))
    args = parser.parse_args()
    n = args.classes * args.per_class
    print(f"K={args.classes} d={args.dim} N={n} (+{args.classes * max(1, args.per_class // 2)} test), "
          f"batch {args.batch}, {args.threads} thread(s)")  # fmt: skip
    print("| path | time (s) | peak RSS above the inputs (GB) | nc1 |")
    print("|---|---:|---:|---:|")
    ctx = mp.get_context("spawn")
    for path in args.paths.split(","):
        queue = ctx.Queue()
        proc = ctx.Process(target=child, args=(path, args, queue))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            print(f"| {path} | - | killed (exit code {proc.exitcode}) | |")
            continue
        seconds, peak, nc1 = queue.get()
        print(f"| {path} | {seconds:.1f} | {peak:.2f} | {nc1:.6g} |", flush=True)


if __name__ == "__main__":
    main()
