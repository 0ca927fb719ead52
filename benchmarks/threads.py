"""Milliseconds per optimizer step on the CPU against torch's thread count, for a tiny MLP (the demo), a small
convnet and ResNet18, with the count `train.threads=auto` picks (nclab.threads); `--busy N` keeps N other
processes spinning (a busy machine).

    python benchmarks/threads.py                      # idle machine
    python benchmarks/threads.py --busy 2 --steps 10  # two spinning processes beside it
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import torch

from nclab.config import resolve
from nclab.models import build_model
from nclab.threads import DEFAULT_THREADS, choose_threads, step_flops

CASES = {  # name: (overrides, input shape)
    "demo mlp 256x3": (["model=mlp", "model.width=256", "model.depth=3", "model.batch_norm=true"], (64,)),
    "convnet 28x28": (["model=convnet"], (1, 28, 28)),
    "resnet18 32x32": (["model=resnet18"], (3, 32, 32)),
}


def spin() -> None:
    while True:
        pass


def ms_per_step(overrides: list[str], shape: tuple[int, ...], threads: int, batch: int, steps: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(resolve(None, overrides), shape, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    times = []
    for _ in range(steps + 2):  # two warm-up steps
        start = time.perf_counter()
        logits, _ = model(x)
        torch.nn.functional.cross_entropy(logits, y).backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times[2:])[len(times[2:]) // 2]  # median


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--busy", type=int, default=0, help="spinning processes beside the benchmark")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", default=None, help="counts to time, e.g. 1,2,4 (default 1..cores)")
    args = parser.parse_args()
    counts = sorted({1, 2, DEFAULT_THREADS} if args.threads is None else map(int, args.threads.split(",")))
    spinners = [mp.Process(target=spin, daemon=True) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    try:
        print(f"cores (torch default) {DEFAULT_THREADS}, busy processes {args.busy}, batch {args.batch}")
        for name, (overrides, shape) in CASES.items():
            model = build_model(resolve(None, overrides), shape, 10)
            auto = choose_threads("auto", model, shape, args.batch)
            flops = step_flops(model, shape, args.batch)
            cells = [
                f"{t}: {ms_per_step(overrides, shape, t, args.batch, args.steps):.1f} ms" for t in counts
            ]
            print(f"{name:16s} {flops:.2g} FLOP/step  auto={auto}  " + "  ".join(cells), flush=True)
    finally:
        for p in spinners:
            p.terminate()


if __name__ == "__main__":
    main()
