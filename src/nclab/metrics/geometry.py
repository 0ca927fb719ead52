"""Geometry of K class vectors without any K x K matrix (K up to a language model's vocabulary).

Two tools, both float64:

- `offset_frobenius`: ||c X Y^T - a 11^T - b I||_F^2 for X, Y (K x p) from the R factor of the K x (2p+1)
  matrix F = [1 | X | Y] = Z R (Householder QR, backward stable). In Z's coordinates X Y^T = Z R_X R_Y^T Z^T
  and 11^T = Z r_1 r_1^T Z^T, while I = Z Z^T + (I - Z Z^T); the two parts are orthogonal, so the value is
  ||c R_X R_Y^T - a r_1 r_1^T - b I_r||_F^2 + b^2 (K - r), r = rows of R. O(K p^2) flops, O(p^2) memory
  beyond F, and no cancellation: the ETF distances below are 0 to ~1e-15 on an exact simplex (the expanded
  form 2 - 2<G, E>/||G|| would leave ~1e-8).
- `pair_geometry`: one pass over the K(K-1)/2 unique pairs k < j in row blocks of at most TILE values
  (blocks of the upper triangle: half the flops of a full Gram), for the statistics that have no closed form
  (absolute values, ratios, kernels, maxima). Spreads are merged block by block (Chan et al.), so a std over a
  billion pairs is as exact as a two-pass one.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "ENERGY_KERNELS",
    "TILE",
    "Running",
    "block_rows",
    "etf_distance",
    "offset_frobenius",
    "pair_geometry",
    "product_etf_distance",
]

TILE = 1 << 21  # float64 values in one block of pairwise quantities (16 MiB)
RIESZ_S = 1.0  # Riesz s-energy exponent (s = 1: the Thomson problem's Coulomb energy)
GAUSS_T = 2.0  # Gaussian kernel exp(-t ||u - v||^2), t = 2 as in Wang & Isola 2020 and Liu et al. 2023


def block_rows(k: int) -> int:
    """Rows of a block of k-column pairwise values that fits TILE."""
    return max(1, min(k, TILE // max(k, 1)))


def _r_factor(x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """(r_1, R_X, R_Y) with [1 | X | Y] = Z R; R_Y is R_X when y is None."""
    ones = torch.ones(len(x), 1, dtype=torch.float64, device=x.device)
    f = torch.cat([ones, x] if y is None else [ones, x, y], 1)
    r = torch.linalg.qr(f, mode="r").R
    p = x.shape[1]
    return r[:, :1], r[:, 1 : 1 + p], r[:, 1 : 1 + p] if y is None else r[:, 1 + p :]


def offset_frobenius(x: Tensor, y: Tensor | None, a: float, b: float, scale: float = 1.0) -> float:
    """||scale X Y^T - a 11^T - b I||_F^2 (y None: Y = X) without forming the K x K matrix."""
    k = len(x)
    r1, rx, ry = _r_factor(x.to(torch.float64), None if y is None else y.to(torch.float64))
    m = scale * (rx @ ry.T) - a * (r1 @ r1.T)
    m.diagonal().sub_(b)
    return m.square().sum().item() + b * b * (k - len(r1))


def _etf_offset(x: Tensor, y: Tensor | None) -> float:
    k = len(x)
    _, rx, ry = _r_factor(x.to(torch.float64), None if y is None else y.to(torch.float64))
    g = (rx @ ry.T).norm().item()  # ||X Y^T||_F = ||Z R_X R_Y^T Z^T||_F
    s = math.sqrt(k - 1)
    return math.sqrt(max(offset_frobenius(x, y, a=-1.0 / (k * s), b=1.0 / s, scale=1.0 / g), 0.0))


def etf_distance(a: Tensor) -> float:
    """ETF(A) = || A A^T / ||A A^T||_F - E_K ||_F in [0, 2], E_K = (I - 11^T/K)/sqrt(K-1) (Zhu et al. 2021,
    "ETF_metric"): `offset_frobenius` with scale 1/||A A^T||_F, a = -1/(K sqrt(K-1)), b = 1/sqrt(K-1)."""
    return _etf_offset(a, None)


def product_etf_distance(x: Tensor, y: Tensor) -> float:
    """|| X Y^T / ||X Y^T||_F - E_K ||_F (NC3 with X = W, Y = Hbar; Zhu et al. 2021 "WH_relation")."""
    return _etf_offset(x, y)


class Running:
    """Count, mean, M2 and max of a stream of value blocks (Chan et al. merge, float64, on the device)."""

    def __init__(self, device: torch.device) -> None:
        zero = torch.zeros((), dtype=torch.float64, device=device)
        self.n, self.mean, self.m2, self.max = 0, zero, zero.clone(), zero - math.inf

    def add(self, v: Tensor) -> None:
        m = v.numel()
        if m == 0:
            return
        mu = v.mean()
        delta, total = mu - self.mean, self.n + m
        self.m2 = self.m2 + (v - mu).square().sum() + delta.square() * (self.n * m / total)
        self.mean = self.mean + delta * (m / total)
        self.max = torch.maximum(self.max, v.max())
        self.n = total

    def std(self) -> float:
        """Sample std (ddof = 1); 0 for a single value (one pair has no spread)."""
        return math.sqrt(self.m2.item() / (self.n - 1)) if self.n > 1 else 0.0


ENERGY_KERNELS = {
    "log": lambda d2: -0.5 * d2.log(),  # log(1 / ||u - v||)
    "riesz": lambda d2: d2.pow(-RIESZ_S / 2),  # ||u - v||^-s
    "gauss": lambda d2: (-GAUSS_T * d2).exp(),  # exp(-t ||u - v||^2)
}


def _upper(rows: int, cols: int, device: torch.device) -> Tensor:
    """Mask of a diagonal block (row r is class s + r, column c class s + c): keep c > r (pairs k < j)."""
    return torch.arange(cols, device=device)[None, :] > torch.arange(rows, device=device)[:, None]


def pair_geometry(hbar: Tensor, var: Tensor | None = None, weight: Tensor | None = None) -> dict[str, float]:
    """Statistics over the unique pairs k < j of the rows of Hbar (K x d, centred class means) and of W.

    cos_kj = cos(a_k, a_j): `equiangle_*` std (ddof=1), `maxangle_*` mean |cos + 1/(K-1)| (Papyan et al.
    2020), `distinctiveness` = min angle of Hbar in degrees. With var (V_k = mean_{y_i=k} ||h_i - mu_k||^2):
    CDNV_kj = (V_k + V_j) / (2 ||mu_k - mu_j||^p) (Galanti et al. 2022), p = 2: `cdnv` mean, `cdnv_std`,
    `cdnv_max`; p = 4: `cdnv4` mean. ||mu_k - mu_j||^2 = ||a_k||^2 + ||a_j||^2 - 2 a_k.a_j on the centred
    means (never on raw means, whose norms would cancel). Hyperspherical energies of u_k = a_k/||a_k||
    (Liu et al. 2023, mean over pairs): `nc2_energy_log` log(1/||u_k - u_j||), `nc2_energy_riesz`
    ||u_k - u_j||^-1, `nc2_energy_gauss` exp(-2 ||u_k - u_j||^2).
    """
    a = hbar.to(torch.float64)
    k, dev = len(a), a.device
    norms = a.norm(dim=1)
    sq = norms.square()
    cos_h, cdnv = Running(dev), Running(dev)
    sums = dict.fromkeys(
        ["maxangle_h", "maxangle_w", "cdnv4", *(f"nc2_energy_{e}" for e in ENERGY_KERNELS)], 0.0
    )
    w = None if weight is None else weight.to(dev, torch.float64)
    cos_w = Running(dev)
    w_norms = None if w is None else w.norm(dim=1)
    shift = 1.0 / (k - 1)

    def add(rows: slice, cols: slice, keep: Tensor | None) -> None:
        """The pairs of one block; `keep` masks a diagonal block to k < j (off-diagonal blocks are whole)."""

        def pick(m: Tensor) -> Tensor:
            return m.flatten() if keep is None else m[keep]

        g = pick(a[rows] @ a[cols].T)
        cos = g / pick(norms[rows, None] * norms[None, cols])
        cos_h.add(cos)
        sums["maxangle_h"] += (cos + shift).abs().sum()
        d2u = (2 - 2 * cos).clamp(min=0)
        for name, kernel in ENERGY_KERNELS.items():
            sums[f"nc2_energy_{name}"] += kernel(d2u).sum()
        if var is not None:
            d2 = (pick(sq[rows, None] + sq[None, cols]) - 2 * g).clamp(min=0)
            num = pick(var[rows, None] + var[None, cols]) / 2
            cdnv.add(num / d2)
            sums["cdnv4"] += (num / d2.square()).sum()
        if w is not None:
            cw = pick(w[rows] @ w[cols].T) / pick(w_norms[rows, None] * w_norms[None, cols])
            cos_w.add(cw)
            sums["maxangle_w"] += (cw + shift).abs().sum()

    t = block_rows(k)
    for s in range(0, k, t):
        e = min(s + t, k)
        add(slice(s, e), slice(s, e), _upper(e - s, e - s, dev))
        if e < k:
            add(slice(s, e), slice(e, k), None)
    pairs = k * (k - 1) // 2
    out = {key: float(v) / pairs for key, v in sums.items()}
    out["equiangle_h"] = cos_h.std()
    out["distinctiveness"] = math.degrees(math.acos(min(max(cos_h.max.item(), -1.0), 1.0)))
    if var is None:
        del out["cdnv4"]
    else:
        out |= {"cdnv": cdnv.mean.item(), "cdnv_std": cdnv.std(), "cdnv_max": cdnv.max.item()}
    if w is None:
        del out["maxangle_w"]
    else:
        out["equiangle_w"] = cos_w.std()
    return out
