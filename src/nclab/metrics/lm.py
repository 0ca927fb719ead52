"""The collapse measures Linguistic Collapse (Wu & Papyan 2024) adds for language models, and representation
dispersion (Li et al. 2025): pure float64 functions of the centred class means a_k = mu_k - mu_G (K x d),
the classifier rows w_k, and a stream of features. No K x K matrix: pairs go in blocks of at most
`geometry.TILE` values, spreads merged block by block (Chan et al.). Variances are sample variances
(ddof = 1), as the paper's published columns.

- `log_kern_var` (GNC2, "hyperspherical uniformity"): var over pairs k < j of log(1 / ||u_k - u_j||),
  u_k = a_k / ||a_k|| (its mean is `nc2_energy_log`), coincident pairs (u_k = u_j: log(1/0)) left out and
  counted (`log_kern_coincident`);
- `norms_log_var` (log-norm equinorm): var over classes of log ||a_k||;
- `simcos_var` (UNC3 on cosines, uniform self-duality): var over classes of cos(w_k, a_k);
- `dispersion`: mean over pairs i < j of samples of the cosine distance 1 - cos(h_i, h_j), from the
  identity sum_{i<j} cos(h_i, h_j) = (||sum_i u_i||^2 - n) / 2 with u_i = h_i / ||h_i||: exact over every
  sample of a split in O(d) memory.

Frequency views: `rank_bins` averages a per-class vector over log-spaced bins of frequency rank (the figure
kind `frequency` and `frequency_summaries`, the `<vector>_bin<i>` keys of metrics.jsonl).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import torch
from torch import Tensor

from nclab.metrics.geometry import Running, block_rows

__all__ = [
    "LM_KEYS",
    "Dispersion",
    "frequency_summaries",
    "lm_spreads",
    "log_kernel_var",
    "norms_log_var",
    "rank_bins",
    "simcos_var",
]

LM_KEYS = ["log_kern_var", "log_kern_coincident", "norms_log_var", "simcos_var"]
# ||u_k - u_j||^2 = 2 - 2 cos at or below which a pair of unit vectors is coincident (angle < 1e-6 rad): the
# cosine's float64 rounding (~1e-16) leaves 2 - 2 cos fewer than 4 significant digits there
COINCIDENT = 1e-12


def _var(x: Tensor) -> float:
    return x.var().item() if len(x) > 1 else 0.0


def _unit(a: Tensor) -> Tensor:
    a = a.to(torch.float64)
    return a / a.norm(dim=1, keepdim=True)


def log_kernel_var(hbar: Tensor) -> tuple[float, int]:
    """(var (ddof=1) over pairs k < j of log(1/||u_k - u_j||) = -log(2 - 2 cos_kj) / 2 (GNC2), the number
    of pairs left out as coincident). A pair with ||u_k - u_j||^2 <= `COINCIDENT` (parallel centred means:
    log(1/0) = inf, or a distance at the cosine's rounding level whose log carries no digit) is left out of
    the variance and counted, so one degenerate pair cannot turn the spread into inf or NaN."""
    u = _unit(hbar)
    k = len(u)
    spread = Running(u.device)
    coincident = torch.zeros((), dtype=torch.int64, device=u.device)
    t = block_rows(k)
    for s in range(0, k, t):
        e = min(s + t, k)
        cos = u[s:e] @ u[s:].T  # rows s..e-1 against classes s..K-1
        upper = torch.arange(k - s, device=u.device)[None, :] > torch.arange(e - s, device=u.device)[:, None]
        d2 = 2 - 2 * cos[upper]
        near = d2 <= COINCIDENT
        coincident += near.sum()
        spread.add(-0.5 * d2[~near].log())
    return (spread.m2.item() / (spread.n - 1) if spread.n > 1 else 0.0), int(coincident)


def norms_log_var(hbar: Tensor) -> float:
    """var (ddof=1) over classes of log ||mu_k - mu_G|| (log-norm equinorm)."""
    return _var(hbar.to(torch.float64).norm(dim=1).log())


def simcos_var(weight: Tensor, hbar: Tensor) -> float:
    """var (ddof=1) over classes of cos(w_k, mu_k - mu_G) (UNC3 on cosines)."""
    return _var((_unit(weight) * _unit(hbar)).sum(1))


def lm_spreads(hbar: Tensor, weight: Tensor | None) -> dict[str, float | None]:
    """The three spreads of the rows of Hbar (and W, rows of the same classes; None: simcos_var null) and
    the number of pairs `log_kern_var` left out as coincident."""
    log_kern_var, coincident = log_kernel_var(hbar)
    return {
        "log_kern_var": log_kern_var,
        "log_kern_coincident": coincident,
        "norms_log_var": norms_log_var(hbar),
        "simcos_var": None if weight is None else simcos_var(weight.to(hbar.device), hbar),
    }


class Dispersion:
    """Streaming representation dispersion (Li et al. 2025): 1 - mean_{i<j} cos(h_i, h_j) over every
    feature fed to `update` (float64 sum of unit vectors and a count)."""

    def __init__(self) -> None:
        self.total: Tensor | None = None
        self.n = 0

    @torch.no_grad()
    def update(self, features: Tensor) -> None:
        u = _unit(features.detach().flatten(1)).sum(0)
        self.total = u if self.total is None else self.total + u
        self.n += len(features)

    def value(self) -> float | None:
        """None below two samples."""
        if self.n < 2:
            return None
        mean_cos = (self.total.square().sum().item() - self.n) / (self.n * (self.n - 1))
        return 1.0 - mean_cos


def rank_bins(counts: np.ndarray, values: np.ndarray, bins: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """(geometric centre sqrt(lo (hi - 1)) of each rank bin, mean value per bin): classes with a count
    ranked by it (most frequent first, rank 1..K'), bins [lo, hi) with edges the distinct integers of
    geomspace(1, K' + 1, bins + 1) (fewer bins for small K'); NaN values left out, NaN for a bin without
    any."""
    seen = counts > 0
    order = np.argsort(-counts[seen], kind="stable")
    v = values[seen][order]
    ranks = np.arange(1, len(v) + 1)
    edges = np.unique(np.geomspace(1, len(v) + 1, bins + 1).astype(int))
    centres, means = [], []
    for lo, hi in pairwise(edges):
        chunk = v[(ranks >= lo) & (ranks < hi)]
        chunk = chunk[~np.isnan(chunk)]
        centres.append(np.sqrt(lo * (hi - 1)))
        means.append(chunk.mean() if len(chunk) else np.nan)
    return np.asarray(centres), np.asarray(means)


def frequency_summaries(classes: dict[str, Tensor], bins: int) -> dict[str, float | None]:
    """The per-class vectors of `classes` (with their `counts`) averaged over `bins` log-spaced frequency-rank
    bins (`rank_bins`): `rank_bin<i>` the bin's centre rank, `<vector>_bin<i>` the mean of each vector
    (`counts_bin<i>`: mean count per class), i = 00, 01, ... from the most frequent; None for a bin
    without values."""
    counts = classes["counts"].double().cpu().numpy()
    out: dict[str, float | None] = {
        f"rank_bin{i:02d}": float(c) for i, c in enumerate(rank_bins(counts, counts, bins)[0])
    }
    for name, vector in classes.items():
        means = rank_bins(counts, vector.double().cpu().numpy(), bins)[1]
        out |= {f"{name}_bin{i:02d}": None if np.isnan(m) else float(m) for i, m in enumerate(means)}
    return out
