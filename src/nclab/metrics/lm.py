"""The collapse measures Linguistic Collapse (Wu & Papyan 2024) adds for language models, and representation
dispersion (Li et al. 2025): pure float64 functions of the centred class means a_k = mu_k - mu_G (K x d),
the classifier rows w_k, and a stream of features. No K x K matrix: pairs go in blocks of at most
`geometry.TILE` values, spreads merged block by block (Chan et al.). Variances are sample variances
(ddof = 1), as the paper's published columns.

- `log_kern_var` (GNC2, "hyperspherical uniformity"): var over pairs k < j of log(1 / ||u_k - u_j||),
  u_k = a_k / ||a_k|| (its mean is `nc2_energy_log`);
- `norms_log_var` (log-norm equinorm): var over classes of log ||a_k||;
- `simcos_var` (UNC3 on cosines, uniform self-duality): var over classes of cos(w_k, a_k);
- `dispersion`: mean over pairs i < j of samples of the cosine distance 1 - cos(h_i, h_j), from the
  identity sum_{i<j} cos(h_i, h_j) = (||sum_i u_i||^2 - n) / 2 with u_i = h_i / ||h_i||: exact over every
  sample of a split in O(d) memory.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nclab.metrics.geometry import Running, block_rows

__all__ = ["LM_KEYS", "Dispersion", "lm_spreads", "log_kernel_var", "norms_log_var", "simcos_var"]

LM_KEYS = ["log_kern_var", "norms_log_var", "simcos_var"]


def _var(x: Tensor) -> float:
    return x.var().item() if len(x) > 1 else 0.0


def _unit(a: Tensor) -> Tensor:
    a = a.to(torch.float64)
    return a / a.norm(dim=1, keepdim=True)


def log_kernel_var(hbar: Tensor) -> float:
    """var (ddof=1) over pairs k < j of log(1/||u_k - u_j||) = -log(2 - 2 cos_kj) / 2 (GNC2)."""
    u = _unit(hbar)
    k = len(u)
    spread = Running(u.device)
    t = block_rows(k)
    for s in range(0, k, t):
        e = min(s + t, k)
        cos = u[s:e] @ u[s:].T  # rows s..e-1 against classes s..K-1
        upper = torch.arange(k - s, device=u.device)[None, :] > torch.arange(e - s, device=u.device)[:, None]
        spread.add(-0.5 * (2 - 2 * cos[upper]).clamp(min=0).log())
    return spread.m2.item() / (spread.n - 1) if spread.n > 1 else 0.0


def norms_log_var(hbar: Tensor) -> float:
    """var (ddof=1) over classes of log ||mu_k - mu_G|| (log-norm equinorm)."""
    return _var(hbar.to(torch.float64).norm(dim=1).log())


def simcos_var(weight: Tensor, hbar: Tensor) -> float:
    """var (ddof=1) over classes of cos(w_k, mu_k - mu_G) (UNC3 on cosines)."""
    return _var((_unit(weight) * _unit(hbar)).sum(1))


def lm_spreads(hbar: Tensor, weight: Tensor | None) -> dict[str, float | None]:
    """The three spreads of the rows of Hbar (and W, rows of the same classes; None: simcos_var null)."""
    return {
        "log_kern_var": log_kernel_var(hbar),
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
