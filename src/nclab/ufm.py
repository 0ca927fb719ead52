"""Unconstrained features model (UFM): the last layer with free features, solved by full-batch optimisation.

Free features H (rows h_i in R^d; n_k samples of class k, N = sum_k n_k), classifier W (K x d, rows w_k) and
bias b (K) minimise Zhu et al. 2021's objective

    f(W, H, b) = (1/N) sum_i l(W h_i + b, y_i)
                 + lambda_W/2 ||W||_F^2 + lambda_H/2 ||H||_F^2 + lambda_b/2 ||b||^2

with l any registered loss of `nclab.losses` (its per-sample loss, averaged; note ||H||_F^2 is summed over the
N samples). The run directory, metrics.jsonl keys (`nc_metrics`, or `multilabel_metrics` for pick_all_label;
"epoch" = iteration), figures and `plot` / `compare` are those of a training run.

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
  lambda_b > 0 adds alpha ||b - s_t/K 1||^2 + lambda_b/2 ||b||^2 along 1, so b = 2 alpha s_t / (K (2 alpha +
  lambda_b)) 1, valid while no global feature mean helps: 2 alpha lambda_b s_t / (K (2 alpha + lambda_b)) <=
  gamma (checked). Without bias the target is s_t I: r = min(d, K), W W^T ∝ I (orthogonal frame), same norms.
  Collapse threshold: z* <= 0, i.e. sqrt(n lambda_W lambda_H) >= 2 alpha s_t / K, makes W = H = 0 the global
  minimiser.
- bce (the 2025 BCE-vs-CE study, Thm 2): NC with a simplex ETF, h_i = c w_{y_i} and equal biases b = beta 1.
  On that family (positive logit c s + beta, negatives beta - c s/(K-1)) the stationarity conditions are
      c [sigma(-(c s + beta)) + sigma(beta - c s/(K-1))] = K lambda_W,
      lambda_b beta = (1/K) sigma(-(c s + beta)) - ((K-1)/K) sigma(beta - c s/(K-1)),
  a convex problem in (s, beta) solved here by nested root finding. The study's z = W h - b has b = -beta.
- pick_all_label with multiplicity-1 and -2 samples (Li et al. 2023): NC on the multiplicity-1 samples and
  the tag-wise average: the mean of {a, b}-samples is parallel to mu_a + mu_b (angle < 0.05 rad).
- d < K - 1 or imbalanced n_k (minority collapse, Fang et al. 2021): outside the theorems; metrics as
  measured, no checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, SerializeAsAny, model_validator
from scipy.optimize import brentq
from torch import Tensor

from nclab.config import LossConfig, Section, component_validator, resolve
from nclab.errors import ConfigError, TrainingDiverged
from nclab.losses import Loss, build_loss
from nclab.metrics.multilabel import multilabel_metrics, pair_means
from nclab.metrics.stream import nc_metrics
from nclab.runs import Run

__all__ = ["Check", "Simulation", "UFMConfig", "closed_form_checks", "resolve_ufm", "simulate"]

CE_FAMILY = ("ce", "focal", "label_smoothing", "center")
STATIONARY = 1e-6  # gradient norm above which the output says the run has not converged


class UFMOptim(Section):
    name: Literal["gd", "momentum", "lbfgs"] = Field(
        "lbfgs", description="full-batch gradient descent, heavy-ball momentum, or L-BFGS (strong Wolfe)"
    )
    lr: float = Field(1.0, gt=0, description="step size (lbfgs: the line search's first trial step)")
    momentum: float = Field(0.9, ge=0, lt=1, description="momentum: heavy-ball coefficient")
    history_size: int = Field(10, ge=1, description="lbfgs: curvature pairs kept")


class UFMMeasure(Section):
    every: int = Field(50, ge=1, description="a metrics.jsonl line every this many iterations (and the last)")


class UFMConfig(Section):
    """`nclab ufm key=value ...`; defaults are Zhu et al. 2021's UFM experiment at K = 10."""

    kind: Literal["ufm"] = Field("ufm", description="marks the run directory as a UFM simulation")
    K: int = Field(10, ge=2, description="classes")
    d: int = Field(64, ge=1, description="feature dimension")
    n: int = Field(50, ge=1, description="samples per class (majority classes when minority > 0)")
    minority: int = Field(0, ge=0, description="the last `minority` classes get n / imbalance_ratio samples")
    imbalance_ratio: float = Field(10.0, ge=1, description="n over the minority classes' sample count")
    n_pair: int | None = Field(
        None, ge=0, description="pick_all_label: samples per class pair with both labels (default n)"
    )
    lambda_W: float = Field(5e-4, ge=0, description="decay lambda_W/2 ||W||_F^2")
    lambda_H: float = Field(5e-4, ge=0, description="decay lambda_H/2 ||H||_F^2 (summed over the samples)")
    lambda_b: float = Field(5e-4, ge=0, description="decay lambda_b/2 ||b||^2")
    bias: bool = Field(True, description="learn a bias b (z = W h + b)")
    init_std: float = Field(1.0, gt=0, description="W and H start i.i.d. N(0, init_std^2); b at 0")
    iterations: int = Field(2000, ge=1, description="optimiser iterations at most")
    tol: float = Field(1e-9, ge=0, description="stop when the gradient norm falls below this")
    loss: SerializeAsAny[LossConfig] = Field(
        LossConfig(), validate_default=True, description="any registered loss with its own options"
    )
    optim: UFMOptim = UFMOptim()
    measure: UFMMeasure = UFMMeasure()
    device: Literal["auto", "cpu", "cuda"] = Field(
        "cpu",
        description="cpu by default: at the sizes of the theory, kernel launches cost more than the math",
    )
    dtype: Literal["float64", "float32"] = "float64"
    seed: int = 0
    name: str | None = Field(
        None, description="run directory name; default ufm-<loss>-K<K>-d<d>-n<n>-s<seed>-<time>"
    )
    out: str = "runs"

    _loss = component_validator("loss")

    @model_validator(mode="after")
    def _consistent(self) -> UFMConfig:
        if self.minority >= self.K:
            raise ValueError(
                f"minority={self.minority} leaves no majority class; use at most K-1={self.K - 1}"
            )
        if self.n_pair and self.loss.name != "pick_all_label":
            raise ValueError("n_pair (two-label samples) needs loss=pick_all_label")
        if self.loss.reduction != "mean":
            raise ValueError(
                "loss.reduction: the UFM objective averages the loss over samples; leave it mean"
            )
        if self.loss.feature_decay:
            raise ValueError("loss.feature_decay: the UFM's feature decay is lambda_H; set lambda_H instead")
        return self

    @property
    def counts(self) -> list[int]:
        """n_k: n for the first K - minority classes, max(1, round(n / imbalance_ratio)) for the rest."""
        small = max(1, round(self.n / self.imbalance_ratio))
        return [self.n] * (self.K - self.minority) + [small] * self.minority

    @property
    def pairs(self) -> int:
        """Samples per class pair with both labels (pick_all_label only)."""
        if self.loss.name != "pick_all_label":
            return 0
        return self.n if self.n_pair is None else self.n_pair

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.model_dump(), sort_keys=False)


def resolve_ufm(file: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> UFMConfig:
    """Defaults < YAML file < `key=value` overrides (`loss=ce` sets loss.name, `optim=gd` optim.name)."""
    return resolve(file, overrides, model=UFMConfig)


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


@dataclass
class Simulation:
    """A finished simulation: its run directory, last metrics record, checks, notes and final parameters."""

    run: Run
    record: dict
    checks: list[Check]
    notes: list[str]
    H: Tensor
    W: Tensor | None
    b: Tensor | None
    targets: Tensor  # class indices (N,), or multi-hot rows (N, K) for pick_all_label

    def report(self) -> str:
        """What `nclab ufm` prints: the closed-form checks with measured value and tolerance, then notes."""
        lines = [
            f"run directory: {self.run.path}",
            f"iterations: {self.record['epoch']}, objective "
            f"{self.record['objective']:.10g}, gradient norm {self.record['grad_norm']:.3g}",
        ]
        if self.checks:
            passed = sum(c.passed for c in self.checks)
            lines.append(f"closed-form checks ({passed}/{len(self.checks)} pass):")
            lines += [f"  {c}" for c in self.checks]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def make_targets(cfg: UFMConfig) -> Tensor:
    """Class indices in class order (n_k each), or for pick_all_label multi-hot rows: those plus `pairs`
    two-label rows per class pair {a < b}."""
    labels = torch.repeat_interleave(torch.arange(cfg.K), torch.tensor(cfg.counts))
    if cfg.loss.name != "pick_all_label":
        return labels
    a, b = torch.triu_indices(cfg.K, cfg.K, offset=1)
    rows = F.one_hot(labels, cfg.K)
    two = (F.one_hot(a, cfg.K) + F.one_hot(b, cfg.K)).repeat_interleave(cfg.pairs, dim=0)
    return torch.cat([rows, two]).float()


def build_ufm_loss(cfg: UFMConfig) -> Loss:
    """The registered loss; one ConfigError for a loss the UFM cannot run."""
    loss_fn = build_loss(cfg.loss, cfg.K, cfg.d)
    if loss_fn.needs_inputs:
        raise ConfigError(f"loss={cfg.loss.name} reads the input images; the UFM has only free features")
    if not loss_fn.uses_logits and cfg.lambda_H == 0:
        raise ConfigError(f"loss={cfg.loss.name} pushes features apart without bound; give it lambda_H > 0")
    return loss_fn


def simulate(
    config: UFMConfig | dict, progress: bool = False, on_record: Callable[[dict], None] | None = None
) -> Simulation:
    """Run the UFM as configured into a new run directory; returns the final state and the closed-form checks.
    `on_record` sees each metrics.jsonl record (a sweep reports it to Ray Tune).

    One ConfigError (nothing written) for bad input; a non-finite objective stops the run (status failed,
    the records so far kept) with TrainingDiverged."""
    from nclab.config import validate
    from nclab.parts import resolve_device

    cfg = config if isinstance(config, UFMConfig) else validate(config, UFMConfig)
    device, dtype = resolve_device(cfg.device, key="device"), getattr(torch, cfg.dtype)
    torch.manual_seed(cfg.seed)
    loss_fn = build_ufm_loss(cfg).to(device, dtype)
    targets = make_targets(cfg).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)

    def param(*shape: int, std: float = cfg.init_std) -> Tensor:
        value = torch.randn(*shape, generator=gen, dtype=torch.float64) * std
        return value.to(device, dtype).requires_grad_()

    H = param(len(targets), cfg.d)
    W = param(cfg.K, cfg.d) if loss_fn.uses_logits else None
    b = param(cfg.K, std=0.0) if loss_fn.uses_logits and cfg.bias else None
    # (parameter, its decay lambda): lambda/2 ||p||^2 each; the loss's own centres are not decayed
    decays = [
        (p, lam) for p, lam in ((H, cfg.lambda_H), (W, cfg.lambda_W), (b, cfg.lambda_b)) if p is not None
    ]
    decays += [(p, 0.0) for p in loss_fn.parameters()]
    params = [p for p, _ in decays]

    def data_term() -> Tensor:
        """(1/N) sum_i l(W h_i + b, y_i)."""
        logits = None if W is None else (H @ W.T if b is None else torch.addmm(b, H, W.T))
        return loss_fn(logits, H, targets)

    def objective() -> tuple[Tensor, Tensor]:
        """(f, the data term) of Zhu et al. 2021's objective."""
        data = data_term()
        return data + sum(lam / 2 * p.square().sum() for p, lam in decays if lam), data

    optimizer = _optimizer(cfg.optim, decays, cfg.tol)
    run = Run.create(cfg, stem=f"ufm-{cfg.loss.name}-K{cfg.K}-d{cfg.d}-n{cfg.n}-s{cfg.seed}")

    def measured(iteration: int) -> dict:
        f, data = objective()
        grads = torch.autograd.grad(f, params)
        grad_norm = torch.sqrt(sum(g.square().sum() for g in grads)).item()
        record = {"epoch": iteration, "lr": cfg.optim.lr, "train_loss": data.item(), "objective": f.item()}
        if not math.isfinite(record["objective"]):
            raise TrainingDiverged(
                f"the UFM objective became {record['objective']} by iteration {iteration}; "
                f"lower optim.lr={cfg.optim.lr} or use optim=lbfgs"
            )
        record["grad_norm"] = grad_norm
        record |= _metrics(cfg, H, W, b, targets)
        run.append_metrics(record)
        if on_record:
            on_record(record)
        return record

    iteration = 0
    try:
        record = measured(0)
        while iteration < cfg.iterations and record["grad_norm"] > cfg.tol:
            steps = min(cfg.measure.every, cfg.iterations - iteration)
            done = _steps(optimizer, objective, data_term, steps)
            iteration += done
            record = measured(iteration)
            run.set_status("running", epochs_done=iteration, epochs=cfg.iterations)
            if progress:
                print(
                    f"iteration {iteration}: objective {record['objective']:.10g}, "
                    f"grad norm {record['grad_norm']:.3g}, nc1 {record['nc1']:.3g}"
                )
            if done < steps:  # lbfgs found no further decrease
                break
    except TrainingDiverged as exc:
        run.set_status("failed", epochs_done=iteration, error=str(exc))
        raise
    H, W, b = (None if p is None else p.detach() for p in (H, W, b))
    checks, notes = closed_form_checks(cfg, H, W, b, targets, record, loss_fn)
    if record["grad_norm"] > STATIONARY:
        notes.insert(
            0,
            f"not converged: gradient norm {record['grad_norm']:.2e} after {iteration} iterations; the "
            "closed forms describe the minimiser (raise iterations, or optim=lbfgs)",
        )
    state = (
        {"H": H, "targets": targets}
        | ({"W": W} if W is not None else {})
        | ({"b": b} if b is not None else {})
    )
    run.save_arrays("ufm", iteration, state)
    if targets.ndim == 1:  # `nclab visualize` reads these
        run.save_arrays("features", iteration, {"train_features": H, "train_labels": targets})
    run.set_status("finished", epochs_done=iteration)
    return Simulation(run, record, checks, notes, H, W, b, targets)


def _optimizer(cfg: UFMOptim, decays: list[tuple[Tensor, float]], tol: float) -> torch.optim.Optimizer:
    """L-BFGS over all parameters (its closure adds the penalties), or SGD whose per-parameter weight decay
    lambda p is the gradient of lambda/2 ||p||^2 (so its steps backpropagate the data term only)."""
    if cfg.name == "lbfgs":
        return torch.optim.LBFGS(
            [p for p, _ in decays],
            lr=cfg.lr,
            history_size=cfg.history_size,
            line_search_fn="strong_wolfe",
            tolerance_grad=tol,
            tolerance_change=0.0,
        )
    groups = [{"params": [p], "weight_decay": lam} for p, lam in decays]
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum if cfg.name == "momentum" else 0.0)


def _steps(optimizer: torch.optim.Optimizer, objective, data_term, steps: int) -> int:
    """Run `steps` iterations; returns how many ran (fewer when L-BFGS stops: no further decrease)."""
    if isinstance(optimizer, torch.optim.LBFGS):

        def closure() -> Tensor:
            optimizer.zero_grad(set_to_none=True)
            f = objective()[0]
            f.backward()
            return f

        group = optimizer.param_groups[0]
        group["max_iter"], group["max_eval"] = steps, 25 * steps
        state = optimizer.state[group["params"][0]]
        before = state.get("n_iter", 0)
        optimizer.step(closure)
        return state.get("n_iter", 0) - before
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        data_term().backward()
        optimizer.step()  # + the decays
    return steps


def _metrics(cfg: UFMConfig, H: Tensor, W: Tensor | None, b: Tensor | None, targets: Tensor) -> dict:
    with torch.no_grad():
        if targets.ndim == 2:
            return multilabel_metrics(H, targets, W, b)
        return nc_metrics(H, targets, W, b)


# ---------------------------------------------------------------------------------------------- closed forms


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
    bias: float | None  # b_k, None without bias or when a global feature mean would help (outside)


def mse_solution(cfg: UFMConfig, alpha: float) -> MSESolution:
    """The MSE closed form of the module docstring (alpha: the loss's per-sample factor)."""
    s, k, n = cfg.loss.scale, cfg.K, cfg.n
    gamma = math.sqrt(n * cfg.lambda_W * cfg.lambda_H)
    z = max(s - k * gamma / (2 * alpha), 0.0)
    rank = min(cfg.d, k - 1 if cfg.bias else k)
    bias = 2 * alpha * s / (k * (2 * alpha + cfg.lambda_b))
    if not cfg.bias or cfg.lambda_b * bias > gamma:
        bias = None
    w_sq = rank * z * math.sqrt(n * cfg.lambda_H / cfg.lambda_W)
    h_sq = rank * z * math.sqrt(n * cfg.lambda_W / cfg.lambda_H)
    return MSESolution(z, w_sq, h_sq, bias)


def mse_alpha(loss_fn: Loss, cfg: UFMConfig) -> float:
    """alpha of the per-sample loss alpha ||z - s_t e_y||^2: l(z = 0, y = 0) / s_t^2."""
    zero = torch.zeros(1, cfg.K, dtype=torch.float64)
    return loss_fn.sample_loss(zero, zero, torch.zeros(1, dtype=torch.long)).item() / cfg.loss.scale**2


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

    def etf(self, source: str) -> None:
        r = self.record
        self.small("NC1 tr(Sw Sb+)/K", r["nc1"], 1e-6, source)
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


def outside_theorems(cfg: UFMConfig) -> list[str]:
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
    if cfg.loss.name not in (*CE_FAMILY, "mse", "bce", "pick_all_label"):
        reasons.append(f"loss={cfg.loss.name} (no closed form in nclab)")
    if cfg.loss.name == "bce" and not cfg.bias:
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
    """The checks of the module docstring that apply to this configuration, and notes on what does not."""
    outside = outside_theorems(cfg)
    if outside:
        notes = [f"outside the theorems: {'; '.join(outside)}; metrics as measured, no closed-form checks"]
        if cfg.minority > 1 and W is not None:
            notes.append(
                f"minority collapse: mean cosine of the minority classifiers {_minority_cosine(cfg, W):.4f} "
                f"(simplex ETF {-1 / (cfg.K - 1):.4f}, collapsed 1)"
            )
        return [], notes
    ck = _Checker(cfg, H, W, b, targets, record)
    name = cfg.loss.name
    if name in CE_FAMILY:
        source = "Zhu et al. 2021 Thm 3.1" if name in ("ce", "center") else "Zhou et al. 2022 (losses)"
        if name in ("ce", "center"):
            w_sq = ce_norm(cfg)
            if w_sq == 0:
                ck.notes.append("c <= K lambda_W: the global minimiser is W = H = 0")
                ck.zero(source)
                return ck.checks, ck.notes
            ck.norms(w_sq, None, "nclab.ufm from Zhu et al. 2021")
        ck.etf(source)
        ck.ratio(source)
        ck.equal_biases(source)
        if name == "center":
            means = torch.stack([ck.h[targets == j].mean(0) for j in range(cfg.K)])
            centers = loss_fn.centers.detach().to(torch.float64)
            err = ((centers - means).norm(dim=1) / means.norm(dim=1)).max().item()
            ck.small("centres = class means: max rel. deviation", err, 0.01, source)
    elif name == "mse":
        source = "Zhou et al. 2022 (MSE), Han et al. 2022; nclab.ufm"
        alpha = mse_alpha(loss_fn, cfg)
        sol = mse_solution(cfg, alpha)
        if sol.z == 0:
            threshold = 2 * alpha * cfg.loss.scale / cfg.K
            ck.notes.append(
                f"sqrt(n lambda_W lambda_H) >= 2 alpha s/K = {threshold:.4g}: W = H = 0 is the minimiser"
            )
            ck.zero(source)
            return ck.checks, ck.notes
        ck.norms(sol.w_sq, sol.h_sq, source)
        if cfg.bias:
            ck.etf(source)
        elif cfg.d >= cfg.K:
            gram = ck.w @ ck.w.T
            eye = torch.eye(cfg.K, dtype=gram.dtype, device=gram.device) / math.sqrt(cfg.K)
            ck.small(
                "W W^T ∝ I (orthogonal frame, no bias)",
                (gram / gram.norm() - eye).norm().item(),
                1e-3,
                source,
            )
            ck.small("simplex ETF of the centred means (nc2_h)", record["nc2_h"], 1e-3, source)
        ck.ratio(source)
        if cfg.bias and sol.bias is None:
            ck.notes.append(
                "lambda_b is large enough that a global feature mean helps: b outside the closed form"
            )
        elif cfg.bias:
            ck.add("bias b_k", ck.b.mean().item(), sol.bias, 0.01, source, relative=True)
            ck.equal_biases(source)
    elif name == "bce":
        source = "BCE vs CE 2025, Thm 2; solved in nclab.ufm"
        w_sq, beta = bce_solution(cfg)
        if cfg.lambda_b > 0 and cfg.d >= cfg.K:
            ck.notes.append(
                "bce with lambda_b > 0 and d >= K: a global feature mean carries part of the bias and lowers "
                "the objective below the ETF family, so only equal biases are checked (ETF, h = c w and b* "
                "hold for lambda_b = 0 or d = K-1)"
            )
            ck.small("equal biases: std/|mean| of b", (ck.b.std() / ck.b.mean().abs()).item(), 1e-3, source)
        elif w_sq == 0:
            ck.zero(source)
        else:
            ck.etf(source)
            ck.ratio(source)
            ck.norms(w_sq, None, source)
            ck.equal_biases(source, beta)
    else:  # pick_all_label
        source = "Li et al. 2023"
        ck.etf(source)
        sets, set_means = pair_means(ck.h, targets)
        if len(sets):
            one = targets.sum(1) == 1
            means = torch.stack([ck.h[one & (targets[:, j] > 0)].mean(0) for j in range(cfg.K)])
            tag_sum = means[sets[:, 0]] + means[sets[:, 1]]
            angle = torch.arccos(F.cosine_similarity(set_means, tag_sum).clamp(-1, 1)).max().item()
            ck.small("tag-wise average: max_ab angle(mu_ab, mu_a + mu_b) [rad]", angle, 0.05, source)
    return ck.checks, ck.notes


def _minority_cosine(cfg: UFMConfig, W: Tensor) -> float:
    """Mean cosine between the minority classes' classifier rows (1 = minority collapse)."""
    rows = F.normalize(W[cfg.K - cfg.minority :].to(torch.float64), dim=1)
    cos = rows @ rows.T
    return cos[~torch.eye(len(cos), dtype=torch.bool, device=cos.device)].mean().item()
