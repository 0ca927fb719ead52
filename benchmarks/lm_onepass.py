"""NC statistics of a next-token stream: nclab's one streaming pass (`NCAccumulator`) vs a re-implementation
of Linguistic Collapse's three-pass one-hot accumulation (Wu & Papyan 2024, lib/collapse.py
`Statistics.collect_means` / `collect_vars`: written here, not copied), on the same Zipf-distributed
tokens, each method in its own process so its peak memory is its own.

The three passes: (1) counts and class sums through a K x B one-hot matrix per batch (`onehot.T @ X`),
(2) per-class squared deviations from the final means, (3) the within-class scatter Sigma_W from the final
means (what NC1 needs). nclab's pass gives all three at once (Chan et al.'s merge, only the classes present in
a batch). Both are float64; the script checks they agree on the batches both processed.

The stream is generated batch by batch (batch i from the generator (seed, i), class means from seed), so
the N x d features are never held and both processes see identical batches. Only the method's own work is
timed. `--baseline-batches M` runs the three passes on the first M batches only and extrapolates their time
linearly to the whole stream (every batch does the same K x B x d one-hot product); nclab's pass always runs
over the whole stream (its statistics after M batches are compared with the baseline's).

    PYTHONPATH=src python benchmarks/lm_onepass.py --tokens 32768                # both over the whole stream
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/lm_onepass.py --dim 1024 --tokens 2000000 \\
        --baseline-batches 4                                           # the issue's size on a 2-core CPU
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
import torch

from nclab.metrics.stream import NCAccumulator

Stats = dict[str, torch.Tensor]
Stream = Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]]  # a fresh pass over the batches


def class_means(k: int, d: int, seed: int) -> np.ndarray:
    """The K x d float32 class means mu_y of the synthetic features."""
    return np.random.default_rng(seed).standard_normal((k, d), dtype=np.float32)


def batches(
    means: np.ndarray, tokens: int, batch: int, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batch i of the stream from its own generator (seed, i): labels with p_k ~ 1/(k + 2.7) (Zipf-Mandelbrot)
    and features h = mu_y + 0.5 noise (float32)."""
    k, d = means.shape
    p = 1.0 / (np.arange(k) + 2.7)
    p /= p.sum()
    for i, start in enumerate(range(0, tokens, batch)):
        rng = np.random.default_rng([seed, i])
        y = rng.choice(k, size=min(batch, tokens - start), p=p)
        h = means[y] + 0.5 * rng.standard_normal((len(y), d), dtype=np.float32)
        yield torch.from_numpy(h), torch.from_numpy(y)


def rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def present(
    counts: torch.Tensor, means: torch.Tensor, class_ss: torch.Tensor, scatter: torch.Tensor
) -> Stats:
    """A CPU copy of the statistics of the classes seen (counts > 0): what the two methods compare."""
    seen = counts > 0
    stats = {"counts": counts, "means": means[seen], "class_ss": class_ss[seen], "scatter": scatter}
    return {key: v.to("cpu", copy=True) for key, v in stats.items()}


def timed(fn: Callable[..., object], *args: torch.Tensor) -> float:
    """Seconds `fn(*args)` took (device work included)."""
    start = time.perf_counter()
    fn(*args)
    if args[0].is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def three_pass(stream: Stream, k: int, device: str) -> tuple[Stats, dict[str, list[float]]]:
    """The baseline over the batches of `stream()` (called once per pass); seconds per batch of each pass."""
    f64 = {"dtype": torch.float64, "device": device}
    counts, totals, class_ss = torch.zeros(k, **f64), None, torch.zeros(k, **f64)
    labels = torch.arange(k, device=device)
    seconds: dict[str, list[float]] = {"pass1": [], "pass2": [], "pass3": []}

    def pass1(x: torch.Tensor, y: torch.Tensor) -> None:  # the K x B one-hot products
        nonlocal totals
        onehot = (y[:, None] == labels).double()
        counts.add_(onehot.sum(0))
        totals = onehot.T @ x.double() if totals is None else totals.add_(onehot.T @ x.double())

    def pass2(x: torch.Tensor, y: torch.Tensor) -> None:  # per-class squared deviations
        diff = x.double() - means[y]
        class_ss.scatter_add_(0, y, diff.square().sum(1))

    def pass3(x: torch.Tensor, y: torch.Tensor) -> None:  # within-class scatter from the final means
        nonlocal scatter
        diff = x.double() - means[y]
        scatter = diff.T @ diff if scatter is None else scatter.add_(diff.T @ diff)

    means, scatter = None, None
    for name, step in (("pass1", pass1), ("pass2", pass2), ("pass3", pass3)):
        for x, y in stream():
            seconds[name].append(timed(step, x.to(device), y.to(device)))
        if name == "pass1":
            means = totals / counts.clamp(min=1)[:, None]
    return present(counts, means, class_ss, scatter), seconds


def one_pass(stream: Stream, k: int, device: str, compare_at: int) -> tuple[Stats, list[float]]:
    """nclab's accumulator over the whole stream: its statistics after `compare_at` batches, seconds per
    batch."""
    acc, seconds, stats = NCAccumulator(k), [], None
    for i, (x, y) in enumerate(stream()):
        seconds.append(timed(acc.update, x.to(device), y.to(device)))
        if i + 1 == compare_at:
            stats = present(acc.counts, acc.means + acc.shift, acc.class_ss, acc.scatter)
    return stats, seconds


def worker(method: str, args: argparse.Namespace, out: mp.Queue) -> None:
    """One method in its own process; puts (method, statistics, seconds, peak MiB above the inputs). nclab's
    peak includes its copy of the compared statistics (K_seen x d float64)."""
    torch.set_num_threads(args.threads)
    means = class_means(args.classes, args.dim, args.seed)
    n_batches = math.ceil(args.tokens / args.batch)
    compare_at = min(args.baseline_batches or n_batches, n_batches)
    base = rss_mib()
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if method == "one_pass":
        stream = partial(batches, means, args.tokens, args.batch, args.seed)
        stats, seconds = one_pass(stream, args.classes, args.device, compare_at)
    else:
        stream = partial(batches, means, min(compare_at * args.batch, args.tokens), args.batch, args.seed)
        stats, seconds = three_pass(stream, args.classes, args.device)
    peak = torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda" else rss_mib() - base
    out.put((method, {key: v.numpy() for key, v in stats.items()}, seconds, peak))  # by value


def run(method: str, args: argparse.Namespace) -> tuple[Stats, list[float] | dict[str, list[float]], float]:
    """Statistics, seconds and peak memory of `method` from a fresh process."""
    queue = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=worker, args=(method, args, queue))
    proc.start()
    _, stats, seconds, peak = queue.get()
    proc.join()
    return {key: torch.from_numpy(v) for key, v in stats.items()}, seconds, peak


def spread(seconds: list[float]) -> dict[str, float]:
    """Mean, min and max seconds per batch."""
    return {key: round(f(seconds), 4) for key, f in (("mean", statistics.fmean), ("min", min), ("max", max))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=50_257)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2048, help="tokens per batch")
    parser.add_argument(
        "--baseline-batches", type=int, default=None,
        help="run the three passes on the first M batches only and extrapolate their time (default: all)",
    )  # fmt: skip
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_batches = math.ceil(args.tokens / args.batch)
    if args.baseline_batches is not None and args.baseline_batches < 1:
        parser.exit(2, "error: --baseline-batches must be at least 1\n")
    mine, mine_s, mine_peak = run("one_pass", args)
    theirs, theirs_s, theirs_peak = run("three_pass", args)
    compared = len(theirs_s["pass1"])
    full_batches = args.tokens / args.batch  # the work per batch is linear in its tokens
    three_total = sum(statistics.fmean(s) for s in theirs_s.values()) * full_batches
    diff = {
        key: float((mine[key] - theirs[key]).abs().max() / theirs[key].abs().max().clamp(min=1e-300))
        for key in ("counts", "means", "class_ss", "scatter")
    }
    row = {
        "K": args.classes, "d": args.dim, "N": args.tokens, "batch": args.batch, "batches": n_batches,
        "device": args.device, "threads": args.threads,
        "classes_seen_compared": int((theirs["counts"] > 0).sum()),
        "one_pass_s": round(sum(mine_s), 2), "one_pass_per_batch_s": spread(mine_s),
        "three_pass_batches_measured": compared,
        "three_pass_per_batch_s": {name: spread(s) for name, s in theirs_s.items()},
        "three_pass_s": round(three_total, 2),
        "three_pass_s_is": "measured" if compared == n_batches else f"extrapolated from {compared} batches",
        "speed_up": round(three_total / sum(mine_s), 2),
        "one_pass_peak_mib": round(mine_peak, 1), "three_pass_peak_mib": round(theirs_peak, 1),
        "max_rel_diff_on_compared_batches": diff,
    }  # fmt: skip
    print(json.dumps(row))


if __name__ == "__main__":
    main()
