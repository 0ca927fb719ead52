"""What the benchmarks compare against: the original scripts' NC computation (reference/seed-core.md A6,
`validate_NC.py` of Zhu et al. 2021: per-sample class sums and scatter, float32, scipy pinv) and a timer.
Shared by metrics_speed.py, measure_speed.py and epoch.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np
import scipy.linalg
import torch
from torch import nn


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


@torch.no_grad()
def original_measure(model: nn.Module, train: Iterable, test: Iterable, k: int) -> dict[str, float]:
    """validate_NC.py's compute_info (train, test), compute_Sigma_W (train) and the NC formulas; `model(x)`
    returns (logits, features), `model.head` is the last linear layer; batches are (x, y) on the device."""
    model.eval()

    def compute_info(loader):
        mu_g, sums, counts, correct, n = 0, {}, {}, 0, 0
        for x, y in loader:
            logits, h = model(x)
            mu_g = mu_g + h.sum(0)
            for i in range(len(y)):
                c = y[i].item()
                sums[c] = sums.get(c, 0) + h[i]
                counts[c] = counts.get(c, 0) + 1
            correct += (logits.argmax(1) == y).sum().item()
            n += len(y)
        return mu_g / n, {c: sums[c] / counts[c] for c in sums}, correct / n, n

    mu_g, mu, train_acc, n_train = compute_info(train)
    _, _, test_acc, _ = compute_info(test)
    d = mu_g.shape[0]
    pairs = ((model(x)[1], y) for x, y in train)
    sigma_w = per_sample_scatter(pairs, mu, d) / n_train
    nc = original_nc(sigma_w, mu, mu_g, model.head.weight, model.head.bias, k)
    return nc | {"train_acc": train_acc, "test_acc": test_acc}
