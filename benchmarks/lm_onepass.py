"""NC statistics of a next-token stream: nclab's one streaming pass (`NCAccumulator`) vs a re-implementation
of Linguistic Collapse's three-pass one-hot accumulation (Wu & Papyan 2024, lib/collapse.py as described in
its paper and issue 21: written here, not copied), on the same Zipf-distributed tokens, each in its own
process so its peak memory is its own.

The three passes: (1) counts and class sums through a K x B float64 one-hot matrix per batch
(`onehot.T @ X`), (2) per-class squared deviations from the final means, (3) the within-class scatter
Sigma_W from the final means (what NC1 needs). nclab's pass gives all three at once (Chan et al.'s merge, only
the classes present in a batch). Both are float64; the script checks they agree.

    PYTHONPATH=src python benchmarks/lm_onepass.py                      # K=50257 d=64 N=100k (2-core CPU)
    PYTHONPATH=src python benchmarks/lm_onepass.py --dim 1024 --tokens 2000000 --device cuda
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time

import numpy as np
import torch

from nclab.metrics.stream import NCAccumulator


def zipf_stream(k: int, n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n tokens with p_k ~ 1/(k + 2.7) (Zipf-Mandelbrot) and features h = mu_y + noise (float32)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / (np.arange(k) + 2.7)
    y = rng.choice(k, size=n, p=p / p.sum())
    means = rng.standard_normal((k, d), dtype=np.float32)
    h = means[y] + 0.5 * rng.standard_normal((n, d), dtype=np.float32)
    return torch.from_numpy(h), torch.from_numpy(y)


def rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def three_pass(h: torch.Tensor, y: torch.Tensor, k: int, batch: int) -> dict[str, torch.Tensor]:
    f64 = {"dtype": torch.float64, "device": h.device}
    counts, totals = torch.zeros(k, **f64), torch.zeros(k, h.shape[1], **f64)
    classes = torch.arange(k, device=h.device)
    for s in range(0, len(y), batch):  # pass 1: one-hot K x B float64 per batch
        yb, xb = y[s : s + batch], h[s : s + batch].double()
        onehot = (yb[:, None] == classes).double()
        counts += onehot.sum(0)
        totals += onehot.T @ xb
    means = totals / counts.clamp(min=1)[:, None]
    class_ss = torch.zeros(k, **f64)
    for s in range(0, len(y), batch):  # pass 2: per-class squared deviations
        yb = y[s : s + batch]
        diff = h[s : s + batch].double() - means[yb]
        class_ss.scatter_add_(0, yb, diff.square().sum(1))
    scatter = torch.zeros(h.shape[1], h.shape[1], **f64)
    for s in range(0, len(y), batch):  # pass 3: within-class scatter from the final means
        diff = h[s : s + batch].double() - means[y[s : s + batch]]
        scatter += diff.T @ diff
    return {"counts": counts, "means": means, "class_ss": class_ss, "scatter": scatter}


def one_pass(h: torch.Tensor, y: torch.Tensor, k: int, batch: int) -> dict[str, torch.Tensor]:
    acc = NCAccumulator(k)
    for s in range(0, len(y), batch):
        acc.update(h[s : s + batch], y[s : s + batch])
    return {"counts": acc.counts, "means": acc.means, "class_ss": acc.class_ss, "scatter": acc.scatter}


def worker(method: str, args: argparse.Namespace, out: mp.Queue) -> None:
    torch.set_num_threads(args.threads)
    h, y = zipf_stream(args.classes, args.tokens, args.dim, args.seed)
    h, y = h.to(args.device), y.to(args.device)
    base = rss_mib()
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    start = time.perf_counter()
    stats = {"one_pass": one_pass, "three_pass": three_pass}[method](h, y, args.classes, args.batch)
    if args.device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda" else rss_mib() - base
    out.put((method, seconds, peak, {k: v.cpu().numpy() for k, v in stats.items()}))  # by value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=50_257)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2048, help="tokens per batch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    results = {}
    for method in ("one_pass", "three_pass"):
        queue = ctx.Queue()
        proc = ctx.Process(target=worker, args=(method, args, queue))
        proc.start()
        name, seconds, peak, stats = queue.get()
        proc.join()
        results[name] = (seconds, peak, {k: torch.from_numpy(v) for k, v in stats.items()})
    a, b = results["one_pass"][2], results["three_pass"][2]
    present = b["counts"] > 0
    diff = {
        key: float((a[key] - b[key]).abs().max() / b[key].abs().max().clamp(min=1e-300))
        for key in ("counts", "class_ss", "scatter")
    }
    diff["means"] = float((a["means"][present] - b["means"][present]).abs().max())
    row = {
        "K": args.classes, "d": args.dim, "N": args.tokens, "batch": args.batch, "device": args.device,
        "classes_seen": int(present.sum()),
        "one_pass_s": round(results["one_pass"][0], 3), "three_pass_s": round(results["three_pass"][0], 3),
        "speed_up": round(results["three_pass"][0] / results["one_pass"][0], 2),
        "one_pass_peak_mib": round(results["one_pass"][1], 1),
        "three_pass_peak_mib": round(results["three_pass"][1], 1),
        "max_rel_diff": diff,
    }  # fmt: skip
    print(json.dumps(row))


if __name__ == "__main__":
    main()
