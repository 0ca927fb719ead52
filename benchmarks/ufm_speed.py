"""The UFM simulator (`nclab.ufm.simulate`) against a plain autograd loop written here, same process.

Both run full-batch gradient descent on Zhu et al. 2021's objective with cross-entropy from the same initial
H, W, b (the simulator's seeded draws), so their final objectives must agree to float64 rounding. The
simulator's time includes everything `nclab ufm` does: config validation, the run directory, the metrics
line every `--every` iterations (nc_metrics plus a gradient norm), the closed-form checks and the saved
state (no figure). Then L-BFGS (the default optimiser): wall time until the closed-form checks pass.

    python benchmarks/ufm_speed.py [--classes 10] [--dim 64] [--n 50] [--iterations 2000] [--device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F

from nclab.ufm import resolve_ufm, simulate


def plain_loop(args: argparse.Namespace, lam: float, device: torch.device) -> tuple[float, float]:
    """(seconds, final objective) of the loop a researcher writes by hand."""
    n_total = args.classes * args.n
    gen = torch.Generator().manual_seed(0)
    H = torch.randn(n_total, args.dim, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    W = torch.randn(args.classes, args.dim, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    b = torch.zeros(args.classes, dtype=torch.float64, device=device).requires_grad_()
    y = torch.arange(args.classes, device=device).repeat_interleave(args.n)

    def objective() -> torch.Tensor:
        reg = W.square().sum() + H.square().sum() + b.square().sum()
        return F.cross_entropy(H @ W.T + b, y) + lam / 2 * reg

    sync(device)
    start = time.perf_counter()
    for _ in range(args.iterations):
        f = objective()
        f.backward()
        with torch.no_grad():
            for p in (H, W, b):
                p -= args.lr * p.grad
                p.grad = None
    sync(device)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        return seconds, objective().item()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def nclab_run(overrides: list[str], out: str) -> tuple[float, object]:
    start = time.perf_counter()
    sim = simulate(resolve_ufm(None, [f"out={out}", *overrides]))
    return time.perf_counter() - start, sim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--every", type=int, default=100, help="metrics line every this many iterations")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (tiny problem: 1 is best)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device, lam = torch.device(args.device), 5e-4
    common = [f"K={args.classes}", f"d={args.dim}", f"n={args.n}", f"device={args.device}", "tol=0"]
    common += [f"lambda_W={lam}", f"lambda_H={lam}", f"lambda_b={lam}", "loss=ce"]
    gd = [*common, "optim=gd", f"optim.lr={args.lr}", f"iterations={args.iterations}"]
    with tempfile.TemporaryDirectory() as out:
        plain_loop(argparse.Namespace(**{**vars(args), "iterations": 20}), lam, device)  # warm-up
        nclab_run([*gd, "iterations=20"], out)
        base_s, base_f = plain_loop(args, lam, device)
        rows = []
        for every in (args.iterations, args.every):
            seconds, sim = nclab_run([*gd, f"measure.every={every}"], out)
            rows.append((every, seconds, sim.record["objective"]))
        lbfgs_s, lbfgs = nclab_run([*common, "iterations=5000", "tol=1e-9"], out)
    print(
        f"UFM, CE, K={args.classes} d={args.dim} n={args.n} (N={args.classes * args.n}), float64, "
        f"{args.device}, {args.threads} thread(s), gradient descent lr={args.lr}, {args.iterations} steps"
    )
    print(f"plain autograd loop: {args.iterations / base_s:8.0f} it/s  ({base_s:.2f} s)")
    for every, seconds, objective in rows:
        print(
            f"nclab ufm, metrics every {every:>5}: {args.iterations / seconds:8.0f} it/s  ({seconds:.2f} s)  "
            f"ratio {base_s / seconds:.2f}  final objective rel. diff {abs(objective - base_f) / base_f:.1e}"
        )
    passed = sum(c.passed for c in lbfgs.checks)
    print(
        f"nclab ufm, lbfgs (default): {lbfgs.record['epoch']} iterations, {lbfgs_s:.2f} s, "
        f"gradient norm {lbfgs.record['grad_norm']:.1e}, closed-form checks {passed}/{len(lbfgs.checks)} pass"
    )


if __name__ == "__main__":
    main()
