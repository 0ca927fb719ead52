"""Vocabulary-sized K: peak memory and time of nclab's streaming measurement against a naive float64 one.

nclab: `NCAccumulator` fed batch by batch (features float32), then `stream_metrics`: every train key
(class statistics, QR-based ETF distances, tiled pair statistics, predictions). Naive: the textbook float64
computation, one shot, as the original scripts and metric libraries write it: H in float64, d x d Sigma_W
and Sigma_B with a pseudo-inverse, N x K logits and N x K torch.cdist distances for the predictions, K x K
Gram, cosine and cdist matrices for NC2/NC3/equiangle/maxangle/CDNV. Each configuration runs in a fresh
process (forked from a server that imported torch and nclab once, before any CUDA use) and reports its wall
time and the peak resident memory of the measurement itself (ru_maxrss minus the resident size once torch,
nclab and the float32 input data are loaded). With `--device cuda` the data live on the GPU and the memory
is the measurement's peak GPU allocation above the inputs.

The comparison (`--naive-classes`, where the naive K x K matrices fit) measures everything. The large-K run
leaves out the per-sample predictions (train_acc, ncc_acc, nc4_ncc: O(N K d) in any implementation, N x K
logits and distances; the classifier still enters every W metric) unless `--predictions`.

    python benchmarks/metrics_bigk.py                               # K=50000 d=1024; K=5000 both
    python benchmarks/metrics_bigk.py --classes 10000 --naive-classes 2000 --predictions
    python benchmarks/metrics_bigk.py --device cuda                 # the same on the GPU
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import torch

from nclab.metrics import NCAccumulator, stream_metrics
from nclab.metrics.nc import metrics_from_stats

BATCH = 4096


def problem(k: int, d: int, per_class: int) -> tuple[torch.Tensor, ...]:
    """per_class samples of each of K classes (shuffled), Gaussian class means, float32 features and W."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(k).repeat(per_class)[torch.randperm(k * per_class, generator=g)]
    means = torch.randn(k, d, generator=g)
    h = means[y] + 0.5 * torch.randn(len(y), d, generator=g)
    return h, y, torch.randn(k, d, generator=g), torch.randn(k, generator=g)


def nclab_measure(h, y, w, b, k, geometry_only):
    acc = NCAccumulator(k, None if geometry_only else w, b, keep_features=not geometry_only)
    for s in range(0, len(y), BATCH):
        acc.update(h[s : s + BATCH], y[s : s + BATCH])
    return metrics_from_stats(acc.stats(), w, b) if geometry_only else stream_metrics(acc)


def naive_measure(h, y, w, b, k, geometry_only):
    """Everything materialised in float64: H, N x K logits and distances, K x K matrices."""
    h, w, b = h.double(), w.double(), b.double()
    n, d = h.shape
    counts = torch.bincount(y, minlength=k).double()
    means = torch.zeros(k, d, dtype=torch.float64, device=h.device).index_add_(0, y, h) / counts[:, None]
    mu_g = h.mean(0)
    c = h - means[y]
    sw = c.T @ c / n
    hbar = means - mu_g
    sb = hbar.T @ hbar / k
    out = {"nc1": torch.trace(sw @ torch.linalg.pinv(sb, hermitian=True)).item() / k}
    e = (torch.eye(k, dtype=torch.float64, device=h.device) - 1 / k) / (k - 1) ** 0.5

    def etf(g):
        return (g / g.norm() - e).norm().item()

    def cos(a):
        u = a / a.norm(dim=1, keepdim=True)
        return u @ u.T

    off = ~torch.eye(k, dtype=torch.bool, device=h.device)
    upper = torch.ones(k, k, dtype=torch.bool, device=h.device).triu(
        1
    )  # unique pairs k < j (SPEC.md's equiangle)
    ch, cw = cos(hbar), cos(w)
    var = c.square().sum(1).new_zeros(k).index_add_(0, y, c.square().sum(1)) / counts
    dist2 = torch.cdist(means, means).square()
    out |= {
        "nc2_h": etf(hbar @ hbar.T),
        "nc2_w": etf(w @ w.T),
        "nc3": etf(w @ hbar.T),
        "equiangle_h": ch[upper].std().item(),
        "equiangle_w": cw[upper].std().item(),
        "maxangle_h": (ch[off] + 1 / (k - 1)).abs().mean().item(),
        "maxangle_w": (cw[off] + 1 / (k - 1)).abs().mean().item(),
        "cdnv": ((var[:, None] + var[None, :])[off] / (2 * dist2[off])).mean().item(),
    }
    if not geometry_only:
        pred = (h @ w.T + b).argmax(1)
        ncc = torch.cdist(h, means).argmin(1)
        out |= {"train_acc": (pred == y).double().mean().item(), "ncc_acc": (ncc == y).double().mean().item()}
        out["nc4_ncc"] = (pred != ncc).double().mean().item()
    return out


def child(
    kind: str, k: int, d: int, per_class: int, geometry_only: bool, device: str, queue: mp.Queue
) -> None:
    h, y, w, b = (t.to(device) for t in problem(k, d, per_class))
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**30
    else:
        with open("/proc/self/statm") as f:  # resident pages now: the process, torch and the input data
            before = int(f.read().split()[1]) * resource.getpagesize() / 2**30
    fn = nclab_measure if kind == "nclab" else naive_measure
    try:
        start = time.perf_counter()
        out = fn(h, y, w, b, k, geometry_only)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    except RuntimeError as exc:  # out of memory
        queue.put((kind, None, None, str(exc).splitlines()[0]))
        return
    peak = (
        torch.cuda.max_memory_allocated() / 2**30
        if cuda
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )
    queue.put((kind, seconds, peak - before, out))


def run(kind: str, k: int, d: int, per_class: int, geometry_only: bool, device: str) -> tuple:
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "nclab.metrics"])
    queue = ctx.Queue()
    proc = ctx.Process(target=child, args=(kind, k, d, per_class, geometry_only, device, queue))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        return kind, None, None, f"killed (exit code {proc.exitcode}: out of memory)"
    return queue.get()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=50_000, help="K of the nclab-only measurement")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--per-class", type=int, default=2, help="samples per class (N = K x this)")
    parser.add_argument("--naive-classes", type=int, default=5_000, help="K where both run (the naive fits)")
    parser.add_argument(
        "--predictions", action="store_true", help="large-K run: also the O(N K d) predictions"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(
        f"{where}, torch threads {torch.get_num_threads()}, d={args.dim}, {args.per_class} samples per class"
    )
    print("| K | N | implementation | time (s) | peak memory above the inputs (GiB) |")
    print("|---:|---:|---|---:|---:|")
    results = {}
    plan = ((args.naive_classes, ("naive", "nclab"), False), (args.classes, ("nclab",), not args.predictions))
    for k, kinds, geometry_only in plan:
        for kind in kinds:
            _, seconds, peak, out = results[(kind, k)] = run(
                kind, k, args.dim, args.per_class, geometry_only, args.device
            )
            shown = f"{seconds:.1f} | {peak:.2f}" if seconds is not None else f"- | {out}"
            label = f"{kind} (no predictions)" if geometry_only else kind
            print(f"| {k:,} | {k * args.per_class:,} | {label} | {shown} |", flush=True)
    naive, ours = results[("naive", args.naive_classes)], results[("nclab", args.naive_classes)]
    if naive[1] is not None:
        time_ratio, memory_ratio = naive[1] / ours[1], naive[2] / ours[2]
        print(f"K={args.naive_classes:,}: naive / nclab time {time_ratio:.2f}x, memory {memory_ratio:.2f}x")
        diff = max(abs(ours[3][key] - v) / max(abs(v), 1e-300) for key, v in naive[3].items())
        print(f"max relative difference of the shared keys: {diff:.1e}")


if __name__ == "__main__":
    main()
