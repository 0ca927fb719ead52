"""What the benchmarks compare against: the original scripts' NC computation (reference/seed-core.md A6,
`validate_NC.py` of Zhu et al. 2021) and a timer. Shared by metrics_speed.py and measure_speed.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np
import scipy.linalg
import torch


def per_sample_scatter(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], mu: dict, d: int) -> torch.Tensor:
    """N Sigma_W as the original built it: one d x d outer product per sample, a host read of each label."""
    scatter = None
    for h, y in pairs:
        if scatter is None:
            scatter = torch.zeros(d, d, device=h.device)
        for i in range(len(y)):
            v = (h[i] - mu[y[i].item()]).unsqueeze(1)
            scatter += v @ v.T
    return scatter


def original_nc(
    sigma_w: torch.Tensor, mu: dict, mu_g: torch.Tensor, w: torch.Tensor, b: torch.Tensor, k: int
) -> dict[str, float]:
    """NC1 (float32 scipy.linalg.pinv), NC2-NC4 with uncentred W, from the original's statistics."""
    sigma_b = torch.zeros_like(sigma_w)
    for c in range(k):
        v = (mu[c] - mu_g).unsqueeze(1)
        sigma_b += v @ v.T
    sigma_b /= k
    nc1 = np.trace(sigma_w.cpu().numpy() @ scipy.linalg.pinv(sigma_b.cpu().numpy())) / k
    hbar = torch.stack([mu[c] - mu_g for c in range(k)])
    target = (torch.eye(k, device=w.device) - 1 / k) / (k - 1) ** 0.5

    def etf(g: torch.Tensor) -> float:
        return torch.linalg.norm(g / torch.linalg.norm(g) - target).item()

    return {
        "nc1": float(nc1),
        "nc2_w": etf(w @ w.T),
        "nc3": etf(w @ hbar.T),
        "nc4_bias": (w @ mu_g + b).norm().item(),
    }


def timed(fn: Callable, *args, device: str, repeat: int = 1) -> tuple[float, object]:
    """Best wall time of `repeat` calls of fn(*args), synchronising the GPU around each."""
    best, out = float("inf"), None
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn(*args)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, out
