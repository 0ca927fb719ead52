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


class Clock:
    """Wall and process-CPU seconds of a block (CPU time is what counts on a shared, loaded machine)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> Clock:
        sync(self.device)
        self.start = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        sync(self.device)
        self.wall = time.perf_counter() - self.start[0]
        self.cpu = time.process_time() - self.start[1]


def plain_loop(args: argparse.Namespace, lam: float, device: torch.device) -> tuple[Clock, float]:
    """(time, final objective) of the loop a researcher writes by hand."""
    n_total = args.classes * args.n
    gen = torch.Generator().manual_seed(0)
    H = torch.randn(n_total, args.dim, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    W = torch.randn(args.classes, args.dim, generator=gen, dtype=torch.float64).to(device).requires_grad_()
    b = torch.zeros(args.classes, dtype=torch.float64, device=device).requires_grad_()
    y = torch.arange(args.classes, device=device).repeat_interleave(args.n)

    def objective() -> torch.Tensor:
        reg = W.square().sum() + H.square().sum() + b.square().sum()
        return F.cross_entropy(H @ W.T + b, y) + lam / 2 * reg

    with Clock(device) as clock:
        for _ in range(args.iterations):
            f = objective()
            f.backward()
            with torch.no_grad():
                for p in (H, W, b):
                    p -= args.lr * p.grad
                    p.grad = None
    with torch.no_grad():
        return clock, objective().item()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def nclab_run(overrides: list[str], out: str, device: torch.device) -> tuple[Clock, object]:
    with Clock(device) as clock:
        sim = simulate(resolve_ufm(None, [f"out={out}", *overrides]))
    return clock, sim


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
        nclab_run([*gd, "iterations=20"], out, device)
        base, base_f = plain_loop(args, lam, device)
        rows = []
        for every in (args.iterations, args.every):
            clock, sim = nclab_run([*gd, f"measure.every={every}"], out, device)
            rows.append((every, clock, sim.record["objective"]))
        lbfgs_clock, lbfgs = nclab_run([*common, "iterations=5000", "tol=1e-9"], out, device)
    print(
        f"UFM, CE, K={args.classes} d={args.dim} n={args.n} (N={args.classes * args.n}), float64, "
        f"{args.device}, {args.threads} thread(s), gradient descent lr={args.lr}, {args.iterations} steps"
    )
    it = args.iterations
    print("iterations/s by CPU time (by wall time); speed ratio nclab / plain by CPU time (by wall time)")
    print(f"plain autograd loop: {it / base.cpu:6.0f} it/s ({it / base.wall:.0f})")
    for every, clock, objective in rows:
        print(
            f"nclab ufm, metrics every {every:>5}: {it / clock.cpu:6.0f} it/s ({it / clock.wall:.0f})  "
            f"ratio {base.cpu / clock.cpu:.2f} ({base.wall / clock.wall:.2f})  "
            f"final objective rel. diff {abs(objective - base_f) / base_f:.1e}"
        )
    passed = sum(c.passed for c in lbfgs.checks)
    print(
        f"nclab ufm, lbfgs (default): {lbfgs.record['epoch']} iterations, {lbfgs_clock.cpu:.2f} s CPU "
        f"({lbfgs_clock.wall:.2f} s wall), "
        f"gradient norm {lbfgs.record['grad_norm']:.1e}, closed-form checks {passed}/{len(lbfgs.checks)} pass"
    )


if __name__ == "__main__":
    main()
