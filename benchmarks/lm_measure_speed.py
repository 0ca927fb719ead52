"""Cost of the hooked measurement of an nclab `model=gpt` with K = a vocabulary, split into its streaming pass
and its once-per-epoch work: the measured epoch of a text run (`measure.measure` -> `measure_epoch`: eval
forward, loss, class-weighted NC accumulators, Linguistic Collapse's keys, dispersion; train and test split)
over a Zipf token stream, timed after one warm-up epoch, at one or more stream lengths.

nclab's own functions are timed in place by a wrapper (module attributes and methods replaced by a timed call
of the original; nothing is copied): `_pass` (the streaming pass of a split: forward, loss, `update` of the
accumulator, which computes the network's prediction argmax W h over all K rows and, on the test split, the
nearest train centre), the train split's class statistics (computed between the passes: the test split's
centres) and `_assemble` (after the last batch: class statistics and their SVD, pair geometry
over the K_seen (K_seen - 1) / 2 pairs of seen classes, the nearest-centre pass over the kept train features,
decision scores over N x K, compactness, Linguistic Collapse's spreads, per-class arrays, frequency bins).
Each piece is reported with its call path, inclusive seconds and number of calls.

    PYTHONPATH=src python benchmarks/lm_measure_speed.py --tokens 4096 16384          # CPU, K=50257
    PYTHONPATH=src python benchmarks/lm_measure_speed.py --device cuda --tokens 1000000
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from nclab.config import resolve
from nclab.data.text import TokenSplits, token_loaders
from nclab.losses import build_loss
from nclab.measure import measure, settings
from nclab.metrics import epoch, lm, nc, scores, stream
from nclab.models import build_model

# (owner, attribute, label): what is timed; a label's path shows where it was called from
PIECES = [
    (epoch, "_pass", "stream pass"),
    (stream.NCAccumulator, "update", "accumulator update"),
    (stream, "argmax_logits", "argmax W h (B x K x d)"),
    (nc.NearestCentre, "__call__", "nearest centre (B x K_seen x d)"),
    (stream.NCAccumulator, "_merge", "Chan merge (B d^2)"),
    (lm.Dispersion, "update", "dispersion"),
    (epoch, "_assemble", "end of epoch"),
    (stream.NCAccumulator, "stats", "class stats + SVD (K_seen x d)"),
    (epoch, "train_metrics", "train metrics"),
    (stream, "metrics_from_stats", "metrics from stats"),
    (nc, "pair_geometry", "pair geometry (K_seen^2 / 2 pairs)"),
    (nc, "etf_distance", "ETF distance (QR)"),
    (nc, "product_etf_distance", "ETF distance (QR)"),
    (epoch, "_score_keys", "score keys"),
    (epoch, "compactness_terms", "compactness (N x d)"),
    (epoch, "stream_scores", "decision scores (N x K x d)"),
    (scores, "uniform_accuracy_from", "uniform accuracy"),
    (epoch, "lm_spreads", "LC spreads"),
    (lm, "log_kernel_var", "log kernel (K_seen^2 / 2 pairs)"),
    (epoch, "class_arrays", "per-class arrays"),
    (epoch, "frequency_summaries", "frequency bins"),
]
# once-per-epoch pieces whose work is proportional to the measured tokens (rows of the kept train features)
PER_TOKEN = {"nearest centre (B x K_seen x d)", "compactness (N x d)", "decision scores (N x K x d)"}


def end_per_token(seconds: dict[str, float]) -> float:
    """Seconds of the end-of-epoch work that grows with the tokens (`PER_TOKEN` under `_assemble`)."""
    return sum(
        s
        for path, s in seconds.items()
        if path.startswith("end of epoch/") and path.split("/")[-1] in PER_TOKEN
    )


class Timers:
    """Inclusive wall time and calls of wrapped callables, keyed by call path ("end of epoch/score keys")."""

    def __init__(self, device: torch.device) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.stack: list[str] = []
        self.sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None

    def wrap(self, owner: Any, name: str, label: str) -> None:
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.stack.append(label)
            path, start = "/".join(self.stack), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.sync()
                self.seconds[path] += time.perf_counter() - start
                self.calls[path] += 1
                self.stack.pop()

        setattr(owner, name, timed)

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def report(self) -> dict[str, dict[str, float]]:
        return {p: {"s": round(s, 3), "calls": self.calls[p]} for p, s in sorted(self.seconds.items())}


def epoch_runner(
    args: argparse.Namespace, tokens: int, device: torch.device
) -> tuple[Callable[[], Any], int, int]:
    """A measured epoch over a Zipf stream of `tokens` train tokens (test: a quarter): (run, tokens measured,
    classes seen in the train targets)."""
    rng = np.random.default_rng(0)
    p = 1 / (np.arange(args.vocab) + 2.7)
    ids = torch.from_numpy(rng.choice(args.vocab, tokens + tokens // 4, p=p / p.sum()))
    train, test = ids[:tokens], ids[tokens:]
    splits = TokenSplits(train, train[1:], test, test[1:], args.vocab, context=args.context)
    cfg = resolve(
        None,
        ["model=gpt", f"model.width={args.width}", f"model.depth={args.depth}", "model.heads=4",
         f"model.context={args.context}", f"measure.batch_size={args.batch}"],
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg, splits.input_shape, args.vocab).to(device)
    loss = build_loss(cfg.loss, args.vocab, args.width).to(device)
    _, train_batches, test_batches = token_loaders(splits, 8, args.batch, device, 0, None)
    chosen = settings(cfg.measure, args.vocab, False, False, splits)
    seen = int((torch.bincount(train[1:], minlength=args.vocab) > 0).sum())
    return (
        lambda: measure(model, loss, train_batches, test_batches, chosen),
        len(train) - 1 + len(test) - 1,
        seen,
    )


def all_classes(args: argparse.Namespace, timers: Timers, device: torch.device) -> dict[str, Any]:
    """The pieces whose cost grows with the classes seen, once all K are: nclab's pair geometry (with W and
    the class variances) and Linguistic Collapse's spreads on K random centred means."""
    g = torch.Generator().manual_seed(0)
    hbar, w = (torch.randn(args.vocab, args.width, generator=g, dtype=torch.float64) for _ in range(2))
    var = torch.rand(args.vocab, generator=g, dtype=torch.float64)
    hbar, w, var = hbar.to(device), w.to(device), var.to(device)
    timers.reset()
    nc.pair_geometry(hbar, var, w)
    epoch.lm_spreads(hbar, w)
    return {"all_classes": args.vocab, "d": args.width, "pieces": timers.report()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=50_257)
    parser.add_argument(
        "--tokens", type=int, nargs="+", default=[4096], help="train tokens (test: a quarter)"
    )
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4096, help="measure.batch_size (tokens)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--all-classes", action="store_true", help="also time the pair pieces at K_seen = K (random means)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    timers = Timers(device)
    for owner, name, label in PIECES:
        timers.wrap(owner, name, label)
    for i, size in enumerate(args.tokens):
        run, tokens, seen = epoch_runner(args, size, device)
        if i == 0:
            run()  # warm-up
        timers.reset()
        start = time.perf_counter()
        record = run().record
        timers.sync()
        seconds = time.perf_counter() - start
        streaming, per_token = timers.seconds["stream pass"], end_per_token(timers.seconds)
        print(json.dumps({
            "device": args.device, "threads": torch.get_num_threads(), "K": args.vocab, "d": args.width,
            "depth": args.depth, "tokens": tokens, "classes_seen": seen, "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds), "stream_s": round(streaming, 2),
            "stream_tokens_per_s": round(tokens / streaming), "per_epoch_s": round(seconds - streaming, 2),
            "per_epoch_per_token_s": round(per_token, 2),
            "per_epoch_per_class_s": round(seconds - streaming - per_token, 2),
            "ms_per_token": round(1e3 * (streaming + per_token) / tokens, 3),
            "pieces": timers.report(), "nc1": record["nc1"], "log_kern_var": record["log_kern_var"],
        }))  # fmt: skip
    if args.all_classes:
        print(json.dumps(all_classes(args, timers, device)))


if __name__ == "__main__":
    main()
