"""Closed forms of the UFM's global minimisers, checked against a finished simulation.

Closed forms checked at the end (balanced classes, d >= K - 1, lambda_W, lambda_H > 0; c = sqrt(lambda_W /
(n lambda_H)), J = I_K - 11^T/K):

- ce, focal, label_smoothing (Zhu et al. 2021 Thm 3.1; Zhou et al. 2022 "Are all losses created equal"):
  every global minimiser is NC1 + a simplex ETF W, h_i = c w_{y_i}, b = b* 1 (b* = 0 when lambda_b > 0).
  For ce the norm follows by minimising f on that family (derived here): with ||w_k||^2 = s the logits are
  c s (1 or -1/(K-1)) and f = log(1 + (K-1) exp(-c s K/(K-1))) + lambda_W K s, so
      ||W||_F^2 = K s* = ((K-1)/c) log(c/lambda_W - (K-1))   if c > K lambda_W, else W = H = 0.
  center = ce + (lambda/2)||h - c_y||^2 with free centres has the same minimisers (centres = class means).
- mse, per-sample loss alpha ||z - s_t e_y||^2 (alpha read off the registered loss: 1/K for nclab's mse, the
  mean over K, i.e. the summed form's problem with every lambda times K; s_t = loss.scale) (Zhou
  et al. 2022 "On the optimization landscape of NC under MSE loss"; Han et al. 2022). NC1 makes H n copies of
  M (d x K); with bias and lambda_b = 0, b absorbs the mean and f reduces to
      (alpha/K) ||Z - s_t J||_F^2 + gamma ||Z||_*,   Z = W M,  gamma = sqrt(n lambda_W lambda_H)
  (min over W M = Z of lambda_W/2 ||W||^2 + n lambda_H/2 ||M||^2 is gamma ||Z||_*). Singular-value
  thresholding gives Z = z* J (rank r = min(d, K - 1)) with z* = s_t - K gamma / (2 alpha), hence
      ||W||_F^2 = r z* sqrt(n lambda_H / lambda_W),   ||H||_F^2 = r z* sqrt(n lambda_W / lambda_H),
      W W^T ∝ J (simplex ETF), h_i = c w_{y_i},   b = s_t/K 1   (lambda_b = 0).
  lambda_b > 0 adds alpha K (t + beta - s_t/K)^2 + gamma K |t| + lambda_b K/2 beta^2 along 1 (b = beta 1,
  t 11^T the part of Z a global feature mean carries, d >= K): beta = 2 alpha s_t / (K (2 alpha + lambda_b)),
  t = 0 while lambda_b beta <= gamma (always for d = K - 1: no spare direction); beyond it beta = gamma /
  lambda_b and Z gains the singular value zeta = K t = s_t - K gamma/(2 alpha) - K gamma/lambda_b along 1, so
  ||Z||_* = r z* + zeta in the norms and W W^T ∝ z* J + (zeta/K) 11^T (ETF(W) > 0, computed; the centred
  means and W Hbar^T stay a simplex ETF). Without bias the target is s_t I: r = min(d, K), W W^T ∝ I
  (orthogonal frame), same norms.
  Collapse threshold: z* <= 0, i.e. sqrt(n lambda_W lambda_H) >= 2 alpha s_t / K, makes W = H = 0 the global
  minimiser.
- bce (the 2025 BCE-vs-CE study, Thm 2): NC with a simplex ETF, h_i = c w_{y_i} and equal biases b = beta 1.
  On that family (positive logit c s + beta, negatives beta - c s/(K-1)) the stationarity conditions are
      c [sigma(-(c s + beta)) + sigma(beta - c s/(K-1))] = K lambda_W,
      lambda_b beta = (1/K) sigma(-(c s + beta)) - ((K-1)/K) sigma(beta - c s/(K-1)),
  a convex problem in (s, beta) solved here by nested root finding. The study's z = W h - b has b = -beta.
  With d >= K a global feature mean can carry part of the bias, as for mse; it lowers the objective below
  the NC family where lambda_b |beta*| > gamma = sqrt(n lambda_W lambda_H) (the mean's direction pays off,
  as mse's lambda_b beta > gamma; tests/test_ufm.py runs both sides). There only equal biases are
  checked; elsewhere (the default `nclab ufm loss=bce` among them) every check applies.
- pick_all_label with multiplicity-1 and -2 samples (Li et al. 2023): NC on the multiplicity-1 samples and
  the tag-wise average: the mean of {a, b}-samples is parallel to mu_a + mu_b (angle < 0.05 rad).
- d < K - 1 or imbalanced n_k (minority collapse, Fang et al. 2021): outside the theorems; metrics as
  measured, no checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.optimize import brentq
from torch import Tensor

from nclab.losses import Loss
from nclab.metrics.multilabel import pair_means
from nclab.ufm.config import UFMConfig


@dataclass
class Check:
    """One closed-form prediction: `measured` vs `predicted` within `tol` (relative when `relative`)."""

    name: str
    measured: float
    predicted: float
    tol: float
    relative: bool
    source: str

    @property
    def error(self) -> float:
        gap = abs(self.measured - self.predicted)
        return gap / abs(self.predicted) if self.relative else gap

    @property
    def passed(self) -> bool:
        return self.error <= self.tol

    def __str__(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        if self.predicted == 0 and not self.relative:
            return f"{self.name}: {self.measured:.3g} (tol {self.tol:g}) {verdict}  [{self.source}]"
        kind = "rel. error" if self.relative else "error"
        return (
            f"{self.name}: {self.measured:.6g}, closed form {self.predicted:.6g}, {kind} {self.error:.2e} "
            f"(tol {self.tol:g}) {verdict}  [{self.source}]"
        )


def ce_norm(cfg: UFMConfig) -> float:
    """||W||_F^2 of CE's global minimiser: ((K-1)/c) log(c/lambda_W - (K-1)) if c > K lambda_W, else 0."""
    k, c = cfg.K, feature_ratio(cfg)
    return (k - 1) / c * math.log(c / cfg.lambda_W - (k - 1)) if c > k * cfg.lambda_W else 0.0


def feature_ratio(cfg: UFMConfig) -> float:
    """c = sqrt(lambda_W / (n lambda_H)): h_i = c w_{y_i} at the global minimisers."""
    return math.sqrt(cfg.lambda_W / (cfg.n * cfg.lambda_H))


@dataclass
class MSESolution:
    z: float  # z* = s_t - K gamma / (2 alpha), clipped at 0 (then W = H = 0)
    w_sq: float  # ||W||_F^2
    h_sq: float  # ||H||_F^2
    bias: float | None  # b_k; None without bias
    zeta: float = 0.0  # the global feature mean's singular value of Z = W M when it carries part of b


def mse_solution(cfg: UFMConfig, alpha: float, scale: float) -> MSESolution:
    """The MSE closed form of the module docstring (alpha: the loss's per-sample factor, scale: s_t)."""
    s, k, n = scale, cfg.K, cfg.n
    gamma = math.sqrt(n * cfg.lambda_W * cfg.lambda_H)
    z = max(s - k * gamma / (2 * alpha), 0.0)
    rank = min(cfg.d, k - 1 if cfg.bias else k)
    bias, zeta = 2 * alpha * s / (k * (2 * alpha + cfg.lambda_b)), 0.0
    if cfg.bias and cfg.d >= k and cfg.lambda_b * bias > gamma:  # a global feature mean takes part of b
        bias = gamma / cfg.lambda_b
        zeta = s - k * gamma / (2 * alpha) - k * gamma / cfg.lambda_b
    nuclear = rank * z + zeta  # ||Z||_* of the minimiser
    w_sq = nuclear * math.sqrt(n * cfg.lambda_H / cfg.lambda_W)
    h_sq = nuclear * math.sqrt(n * cfg.lambda_W / cfg.lambda_H)
    return MSESolution(z, w_sq, h_sq, bias if cfg.bias else None, zeta)


def mse_nc2_w(sol: MSESolution, k: int) -> float:
    """ETF(W) of the MSE minimiser: W W^T ∝ z* J + (zeta/K) 11^T (a simplex ETF when zeta = 0)."""
    norm = math.sqrt((k - 1) * sol.z**2 + sol.zeta**2)
    return math.sqrt((k - 1) * (sol.z / norm - 1 / math.sqrt(k - 1)) ** 2 + (sol.zeta / norm) ** 2)


def mse_alpha(loss_fn: Loss, cfg: UFMConfig) -> float:
    """alpha of the per-sample loss alpha ||z - s_t e_y||^2: l(z = 0, y = 0) / s_t^2 (s_t = loss's scale)."""
    zero = torch.zeros(1, cfg.K, dtype=torch.float64)
    return loss_fn.sample_loss(zero, zero, torch.zeros(1, dtype=torch.long)).item() / loss_fn.scale**2


def _sigmoid(x: float) -> float:
    return 0.5 * (1 + math.tanh(x / 2))


def _increasing_root(g, x0: float = 0.0) -> float:
    """The root of an increasing scalar function, bracketed by doubling steps away from x0."""
    lo, hi = x0 - 1.0, x0 + 1.0
    while g(lo) > 0:
        lo = x0 - 2 * (x0 - lo)
    while g(hi) < 0:
        hi = x0 + 2 * (hi - x0)
    return brentq(g, lo, hi, xtol=1e-15, rtol=1e-15)


def bce_solution(cfg: UFMConfig) -> tuple[float, float]:
    """(||W||_F^2, beta) of BCE's minimiser on the NC family (module docstring; z = W h + beta 1)."""
    k, c, lam_w, lam_b = cfg.K, feature_ratio(cfg), cfg.lambda_W, cfg.lambda_b

    def beta_of(s: float) -> float:
        def d_beta(beta: float) -> float:  # increasing in beta
            pos, neg = _sigmoid(-(c * s + beta)), _sigmoid(beta - c * s / (k - 1))
            return -pos + (k - 1) * neg + lam_b * k * beta

        return _increasing_root(d_beta)

    def d_s(s: float) -> float:  # increasing in s: the partial minimum of a jointly convex function
        beta = beta_of(s)
        return lam_w * k - c * (_sigmoid(-(c * s + beta)) + _sigmoid(beta - c * s / (k - 1)))

    s = 0.0 if d_s(0.0) >= 0 else _increasing_root(lambda t: d_s(max(t, 0.0)), 1.0)
    return k * s, beta_of(s)


class _Checker:
    """Collects the checks of one finished simulation (float64 copies of H, W, b)."""

    def __init__(self, cfg: UFMConfig, H: Tensor, W: Tensor, b: Tensor | None, targets: Tensor, record: dict):
        self.cfg, self.record, self.targets = cfg, record, targets
        self.h, self.w = H.to(torch.float64), W.to(torch.float64)
        self.b = None if b is None else b.to(torch.float64)
        self.checks: list[Check] = []
        self.notes: list[str] = []

    def add(self, name: str, measured: float, predicted: float, tol: float, source: str, relative=False):
        self.checks.append(Check(name, measured, predicted, tol, relative, source))

    def small(self, name: str, measured: float, tol: float, source: str) -> None:
        self.add(name, measured, 0.0, tol, source)

    def etf(self, source: str, nc2_w: float = 0.0) -> None:
        """NC1, ETF of the centred means and of W Hbar^T; ETF(W) = `nc2_w` (0: W a simplex ETF)."""
        r = self.record
        self.small("NC1 tr(Sw Sb+)/K", r["nc1"], 1e-6, source)
        if nc2_w:
            self.add("ETF distance of W (nc2_w)", r["nc2_w"], nc2_w, 1e-3, source)
        else:
            self.small("simplex ETF of W (nc2_w)", r["nc2_w"], 1e-3, source)
        self.small("simplex ETF of the centred means (nc2_h)", r["nc2_h"], 1e-3, source)
        self.small("W Hbar^T vs ETF (nc3)", r["nc3"], 1e-3, source)

    def ratio(self, source: str) -> None:
        """h_i = c w_{y_i}: max_i ||h_i - c w_{y_i}|| / ||c w_{y_i}|| within 1%."""
        c = feature_ratio(self.cfg)
        hw = c * self.w[self.targets]
        err = ((self.h - hw).norm(dim=1) / hw.norm(dim=1)).max().item()
        self.small(
            f"h_i = c w_y, c = sqrt(lambda_W/(n lambda_H)) = {c:.4g}: max rel. deviation", err, 0.01, source
        )

    def norms(self, w_sq: float, h_sq: float | None, source: str) -> None:
        self.add("||W||_F^2", self.w.square().sum().item(), w_sq, 0.01, source, relative=True)
        if h_sq is not None:
            self.add("||H||_F^2", self.h.square().sum().item(), h_sq, 0.01, source, relative=True)

    def equal_biases(self, source: str, value: float | None = None) -> None:
        """b = b* 1: max_k |b_k - mean b| < 1e-3; with a predicted b*: std/|mean| < 1e-3 and b* within 1%."""
        if self.b is None:
            return
        if value is None:
            self.small(
                "equal biases: max_k |b_k - mean b|",
                (self.b - self.b.mean()).abs().max().item(),
                1e-3,
                source,
            )
            return
        self.small("equal biases: std/|mean| of b", (self.b.std() / self.b.mean().abs()).item(), 1e-3, source)
        self.add("bias b_k (z = W h + b)", self.b.mean().item(), value, 0.01, source, relative=True)

    def zero(self, source: str) -> None:
        """Below the collapse threshold: W = H = 0."""
        self.small("max_i ||h_i|| (W = H = 0 regime)", self.h.norm(dim=1).max().item(), 1e-6, source)
        self.small("||W||_F (W = H = 0 regime)", self.w.norm().item(), 1e-6, source)


def outside_theorems(cfg: UFMConfig, loss_fn: Loss) -> list[str]:
    """Why no closed form applies to this configuration (empty when one does)."""
    reasons = []
    if cfg.d < cfg.K - 1:
        reasons.append(f"d={cfg.d} < K-1={cfg.K - 1}")
    if cfg.minority:
        reasons.append(
            f"imbalanced n_k ({cfg.minority} minority classes of {cfg.counts[-1]} samples; Fang et al. 2021)"
        )
    if cfg.lambda_W == 0 or cfg.lambda_H == 0:
        reasons.append("lambda_W = 0 or lambda_H = 0 (no global minimiser)")
    if loss_fn.family not in CHECKS:
        reasons.append(f"loss={cfg.loss.name} (no closed form in nclab)")
    if loss_fn.family == "bce" and not cfg.bias:
        reasons.append("bce without a bias (the study's theorem has one)")
    return reasons


def closed_form_checks(
    cfg: UFMConfig,
    H: Tensor,
    W: Tensor | None,
    b: Tensor | None,
    targets: Tensor,
    record: dict,
    loss_fn: Loss,
) -> tuple[list[Check], list[str]]:
    """The checks of the module docstring that apply to this configuration (chosen by the loss's `family`),
    and notes on what does not."""
    outside = outside_theorems(cfg, loss_fn)
    if outside:
        notes = [f"outside the theorems: {'; '.join(outside)}; metrics as measured, no closed-form checks"]
        if cfg.minority > 1 and W is not None:
            notes.append(
                f"minority collapse: mean cosine of the minority classifiers {_minority_cosine(cfg, W):.4f} "
                f"(simplex ETF {-1 / (cfg.K - 1):.4f}, collapsed 1)"
            )
        return [], notes
    ck = _Checker(cfg, H, W, b, targets, record)
    CHECKS[loss_fn.family](ck, loss_fn)
    return ck.checks, ck.notes


def _softmax_checks(ck: _Checker, loss_fn: Loss) -> None:
    """ce, focal, label smoothing, center: NC + simplex ETF; -log p_y exactly also ||W||_F^2."""
    cfg = ck.cfg
    exact = loss_fn.family == "cross_entropy"
    source = "Zhu et al. 2021 Thm 3.1" if exact else "Zhou et al. 2022 (losses)"
    if exact:
        w_sq = ce_norm(cfg)
        if w_sq == 0:
            ck.notes.append("c <= K lambda_W: the global minimiser is W = H = 0")
            ck.zero(source)
            return
        ck.norms(w_sq, None, "nclab.ufm from Zhu et al. 2021")
    ck.etf(source)
    ck.ratio(source)
    ck.equal_biases(source)
    centers = getattr(loss_fn, "centers", None)
    if centers is not None:  # learned centres take the class means
        means = torch.stack([ck.h[ck.targets == j].mean(0) for j in range(cfg.K)])
        err = ((centers.detach().to(torch.float64) - means).norm(dim=1) / means.norm(dim=1)).max().item()
        ck.small("centres = class means: max rel. deviation", err, 0.01, source)


def _mse_checks(ck: _Checker, loss_fn: Loss) -> None:
    cfg, source = ck.cfg, "Zhou et al. 2022 (MSE), Han et al. 2022; nclab.ufm"
    alpha = mse_alpha(loss_fn, cfg)
    sol = mse_solution(cfg, alpha, loss_fn.scale)
    if sol.z == 0:
        threshold = 2 * alpha * loss_fn.scale / cfg.K
        ck.notes.append(
            f"sqrt(n lambda_W lambda_H) >= 2 alpha s/K = {threshold:.4g}: W = H = 0 is the minimiser"
        )
        ck.zero(source)
        return
    if sol.zeta:
        ck.notes.append(
            "a global feature mean carries part of the bias (lambda_b large: b = gamma/lambda_b); "
            f"Z = W M gains the singular value zeta = {sol.zeta:.4g} along 1"
        )
    ck.norms(sol.w_sq, sol.h_sq, source)
    if cfg.bias:
        ck.etf(source, mse_nc2_w(sol, cfg.K))
    elif cfg.d >= cfg.K:
        gram = ck.w @ ck.w.T
        eye = torch.eye(cfg.K, dtype=gram.dtype, device=gram.device) / math.sqrt(cfg.K)
        err = (gram / gram.norm() - eye).norm().item()
        ck.small("W W^T ∝ I (orthogonal frame, no bias)", err, 1e-3, source)
        ck.small("simplex ETF of the centred means (nc2_h)", ck.record["nc2_h"], 1e-3, source)
    ck.ratio(source)
    if cfg.bias:
        ck.add("bias b_k", ck.b.mean().item(), sol.bias, 0.01, source, relative=True)
        ck.equal_biases(source)


def _bce_checks(ck: _Checker, loss_fn: Loss) -> None:
    cfg, source = ck.cfg, "BCE vs CE 2025, Thm 2; solved in nclab.ufm"
    w_sq, beta = bce_solution(cfg)
    gamma = math.sqrt(cfg.n * cfg.lambda_W * cfg.lambda_H)
    if cfg.d >= cfg.K and cfg.lambda_b * abs(beta) > gamma:
        ck.notes.append(
            f"bce with lambda_b |beta*| = {cfg.lambda_b * abs(beta):.3g} > sqrt(n lambda_W lambda_H) = "
            f"{gamma:.3g} and d >= K: a global feature mean carries part of the bias and lowers the "
            "objective below the ETF family, so only equal biases are checked"
        )
        ck.small("equal biases: std/|mean| of b", (ck.b.std() / ck.b.mean().abs()).item(), 1e-3, source)
    elif w_sq == 0:
        ck.zero(source)
    else:
        ck.etf(source)
        ck.ratio(source)
        ck.norms(w_sq, None, source)
        ck.equal_biases(source, beta)


def _pick_all_checks(ck: _Checker, loss_fn: Loss) -> None:
    """NC on the multiplicity-1 samples and the tag-wise average of the two-label ones."""
    source, targets = "Li et al. 2023", ck.targets
    ck.etf(source)
    sets, set_means = pair_means(ck.h, targets)
    if len(sets):
        one = targets.sum(1) == 1
        means = torch.stack([ck.h[one & (targets[:, j] > 0)].mean(0) for j in range(ck.cfg.K)])
        tag_sum = means[sets[:, 0]] + means[sets[:, 1]]
        angle = torch.arccos(F.cosine_similarity(set_means, tag_sum).clamp(-1, 1)).max().item()
        ck.small("tag-wise average: max_ab angle(mu_ab, mu_a + mu_b) [rad]", angle, 0.05, source)


# the checks of each loss family (losses.Loss.family)
CHECKS = {
    "cross_entropy": _softmax_checks,
    "softmax": _softmax_checks,
    "mse": _mse_checks,
    "bce": _bce_checks,
    "pick_all": _pick_all_checks,
}


def _minority_cosine(cfg: UFMConfig, W: Tensor) -> float:
    """Mean cosine between the minority classes' classifier rows (1 = minority collapse)."""
    rows = F.normalize(W[cfg.K - cfg.minority :].to(torch.float64), dim=1)
    cos = rows @ rows.T
    return cos[~torch.eye(len(cos), dtype=torch.bool, device=cos.device)].mean().item()
