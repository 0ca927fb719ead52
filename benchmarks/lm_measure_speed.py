"""Tokens per second of the hooked measurement of an nclab `model=gpt` with K = a vocabulary: the measured
epoch of a text run (`measure.measure`: eval forward, loss, class-weighted NC accumulators, Linguistic
Collapse's keys, dispersion) over a Zipf token stream, train and test split, timed after one warm-up epoch.

    PYTHONPATH=src python benchmarks/lm_measure_speed.py                          # CPU, K=50257, 32k tokens
    PYTHONPATH=src python benchmarks/lm_measure_speed.py --device cuda --tokens 1000000
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from nclab.config import resolve
from nclab.data.text import TokenSplits, token_loaders
from nclab.losses import build_loss
from nclab.measure import measure, settings
from nclab.models import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=50_257)
    parser.add_argument("--tokens", type=int, default=32_768, help="train tokens (test: a quarter)")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4096, help="measure.batch_size (tokens)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    p = 1 / (np.arange(args.vocab) + 2.7)
    ids = torch.from_numpy(rng.choice(args.vocab, args.tokens + args.tokens // 4, p=p / p.sum()))
    train, test = ids[: args.tokens], ids[args.tokens :]
    splits = TokenSplits(train, train[1:], test, test[1:], args.vocab, context=args.context)
    cfg = resolve(
        None,
        ["model=gpt", f"model.width={args.width}", f"model.depth={args.depth}", "model.heads=4",
         f"model.context={args.context}", f"measure.batch_size={args.batch}"],
    )  # fmt: skip
    device = torch.device(args.device)
    model = build_model(cfg, splits.input_shape, args.vocab).to(device)
    loss = build_loss(cfg.loss, args.vocab, args.width).to(device)
    _, train_batches, test_batches = token_loaders(splits, 8, args.batch, device, 0, None)
    chosen = settings(cfg.measure, args.vocab, False, False, splits)
    measure(model, loss, train_batches, test_batches, chosen)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    record = measure(model, loss, train_batches, test_batches, chosen).record
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens = len(train) - 1 + len(test) - 1
    print(json.dumps({
        "device": args.device, "K": args.vocab, "d": args.width, "depth": args.depth, "tokens": tokens,
        "classes_seen": int((torch.bincount(train[1:], minlength=args.vocab) > 0).sum()),
        "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds), "weighting": chosen.weighting,
        "nc1": record["nc1"], "log_kern_var": record["log_kern_var"],
        "log_kern_coincident": record["log_kern_coincident"],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
