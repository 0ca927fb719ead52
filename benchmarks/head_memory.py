"""Peak training memory of resnet18 (cifar stem, 32x32 inputs): a learned linear head (the baseline) against
the fixed simplex ETF with d = K (Zhu et al. 2021's "over 20% memory" claim), plus each change alone.

    python benchmarks/head_memory.py [--device auto|cpu|cuda] [--batch 128] [--steps 3] [--classes 10]

One training step = forward, cross-entropy, backward, SGD (momentum 0.9, weight decay 5e-4) step. Measured:
- cuda: torch.cuda.max_memory_allocated after `--steps` steps, reset before the model is built, so it counts
  parameters, gradients, momentum buffers, activations and the batch (the caching allocator's reserve is not);
- cpu: each variant runs in a fresh subprocess; we report its peak resident set size (getrusage ru_maxrss)
  and the growth of that peak over the resident size just before the first step (model, optimizer, batch
  and the Python/torch runtime are in the baseline; the growth is what training steps add: gradients,
  momentum, activations). glibc may keep freed pages, so RSS is an upper bound of the live heap.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys

import torch
import torch.nn.functional as F

from nclab.config import resolve
from nclab.models import build_model, count_parameters

VARIANTS = {
    "learned": [],
    "etf": ["head.fixed=etf"],
    "fixdim": ["head.fixdim=true"],
    "etf+fixdim": ["head.fixed=etf", "head.fixdim=true"],
}


def _rss_bytes() -> int:
    """Current resident set size (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def run_variant(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    torch.manual_seed(0)
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    cfg = resolve(None, ["model=resnet18", "model.stem=cifar", *VARIANTS[name]])
    model = build_model(cfg, (3, 32, 32), args.classes).to(device)
    opt = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9, weight_decay=5e-4
    )
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, args.classes, (args.batch,), device=device)
    before = _rss_bytes()
    for _ in range(args.steps):
        logits, _ = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out = {"params": count_parameters(model), "d": model.feature_dim}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        out["peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        out["peak_mib"] = peak / 2**20
        out["growth_mib"] = (peak - before) / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    name = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if args.worker:  # one CPU variant in this fresh process
        print(json.dumps(run_variant(args.worker, args, device)))
        return
    results = {}
    for variant in VARIANTS:
        if device.type == "cuda":
            results[variant] = run_variant(variant, args, device)
        else:
            cmd = [sys.executable, __file__, "--device", "cpu", "--worker", variant]
            cmd += ["--batch", str(args.batch), "--steps", str(args.steps), "--classes", str(args.classes)]
            results[variant] = json.loads(
                subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            )
    what = "max_memory_allocated" if device.type == "cuda" else "peak RSS (growth during the steps)"
    setup = f"batch {args.batch}, 32x32, K={args.classes}, {args.steps} steps, {device}"
    print(f"resnet18 cifar stem, {setup}: {what}")
    base = results["learned"]
    for variant, r in results.items():
        extra = f" ({r['growth_mib']:7.1f} MiB)" if "growth_mib" in r else ""
        ratio = r["peak_mib"] / base["peak_mib"]
        params = f"{r['params']:>11,} params (x{r['params'] / base['params']:.3f})"
        print(f"{variant:>11}: d={r['d']:>4}  {params}  peak {r['peak_mib']:8.1f} MiB{extra}  x{ratio:.3f}")
    if "growth_mib" in base:
        fix = results["etf+fixdim"]
        print(f"growth ratio etf+fixdim / learned: {fix['growth_mib'] / base['growth_mib']:.3f}")


if __name__ == "__main__":
    main()
