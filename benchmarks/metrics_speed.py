"""nc_metrics against the original scripts' method, same data, same process.

Baseline (reference/seed-core.md A6): class sums accumulated one sample at a time with a host read of
each label, Sigma_W one d x d outer product per sample, Sigma_B one per class, float32, then
scipy.linalg.pinv; NC1-NC4 as Zhu et al. 2021. nclab: `nc_metrics`, every key of SPEC.md, float64.

    python benchmarks/metrics_speed.py [--n 50000] [--d 512] [--classes 10 100] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse

import torch

from baselines import original_nc, per_sample_scatter, timed
from nclab.metrics import nc_metrics


def original(h: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor, k: int) -> dict[str, float]:
    """Class sums one sample at a time (host read of each label), then `baselines.original_nc`."""
    n, d = h.shape
    sums = {c: torch.zeros(d, device=h.device) for c in range(k)}
    counts = dict.fromkeys(range(k), 0)
    for i in range(n):
        c = y[i].item()
        sums[c] += h[i]
        counts[c] += 1
    mu = {c: sums[c] / counts[c] for c in range(k)}
    mu_g = h.sum(0) / n
    return original_nc(per_sample_scatter([(h, y)], mu, d) / n, mu, mu_g, w, b, k)


def problem(n: int, d: int, k: int, device: str) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, k, (n,), generator=g)
    means = torch.randn(k, d, generator=g)
    h = (means[y] + 0.3 * torch.randn(n, d, generator=g)).relu()
    return (
        h.to(device),
        y.to(device),
        torch.randn(k, d, generator=g).to(device),
        torch.randn(k, generator=g).to(device),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, N={args.n}, d={args.d}")
    print("| K | original (s) | nclab nc_metrics (s) | speed-up | max rel. diff NC1-NC4 |")
    print("|---|---|---|---|---|")
    for k in args.classes:
        h, y, w, b = problem(args.n, args.d, k, args.device)
        nc_metrics(h[:1000], y[:1000] % k, w, b)  # warm-up (kernels, allocator)
        t_new, new = timed(nc_metrics, h, y, w, b, device=args.device, repeat=3)
        t_old, old = timed(original, h, y, w, b, k, device=args.device)
        diff = max(abs(new[key] - old[key]) / abs(new[key]) for key in old)
        print(f"| {k} | {t_old:.2f} | {t_new:.3f} | {t_old / t_new:.0f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
