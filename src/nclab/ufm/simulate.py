"""The UFM simulator: free features H, classifier W and bias b minimise Zhu et al. 2021's objective by
full-batch optimisation (module docstring of nclab.ufm), one metrics.jsonl record every `measure.every`
iterations, the closed-form checks (ufm/theory.py) at the end."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from nclab.config import validate
from nclab.errors import ConfigError, TrainingDiverged
from nclab.losses import Loss, build_loss, losses_where
from nclab.metrics.multilabel import multilabel_metrics
from nclab.metrics.stream import nc_metrics
from nclab.parts import resolve_device
from nclab.runs import Run
from nclab.ufm.config import UFMConfig, UFMOptim
from nclab.ufm.theory import Check, closed_form_checks

STATIONARY = 1e-6  # gradient norm above which the output says the run has not converged


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


def make_targets(cfg: UFMConfig, loss_fn: Loss) -> Tensor:
    """Class indices in class order (n_k each), or for a loss of the pick_all family multi-hot rows: those
    plus `n_pair` (default n) two-label rows per class pair {a < b}."""
    labels = torch.repeat_interleave(torch.arange(cfg.K), torch.tensor(cfg.counts))
    if loss_fn.family != "pick_all":
        return labels
    a, b = torch.triu_indices(cfg.K, cfg.K, offset=1)
    rows = F.one_hot(labels, cfg.K)
    pairs = cfg.n if cfg.n_pair is None else cfg.n_pair
    two = (F.one_hot(a, cfg.K) + F.one_hot(b, cfg.K)).repeat_interleave(pairs, dim=0)
    return torch.cat([rows, two]).float()


def build_ufm_loss(cfg: UFMConfig) -> Loss:
    """The registered loss; one ConfigError for a loss the UFM cannot run."""
    loss_fn = build_loss(cfg.loss, cfg.K, cfg.d)
    if loss_fn.needs_inputs:
        raise ConfigError(f"loss={cfg.loss.name} reads the input images; the UFM has only free features")
    if cfg.n_pair and loss_fn.family != "pick_all":
        pick_all = " or ".join(losses_where(lambda loss: loss.family == "pick_all"))
        raise ConfigError(f"n_pair (two-label samples) needs loss={pick_all}, not loss={cfg.loss.name}")
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
    cfg = config if isinstance(config, UFMConfig) else validate(config, UFMConfig)
    device, dtype = resolve_device(cfg.device, key="device"), getattr(torch, cfg.dtype)
    torch.manual_seed(cfg.seed)
    loss_fn = build_ufm_loss(cfg).to(device, dtype)
    targets = make_targets(cfg, loss_fn).to(device)
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
    run = Run.create(cfg)

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
    return _finish(cfg, run, iteration, record, (H, W, b), targets, loss_fn)


def _finish(
    cfg: UFMConfig,
    run: Run,
    iteration: int,
    record: dict,
    params: tuple[Tensor, Tensor | None, Tensor | None],
    targets: Tensor,
    loss_fn: Loss,
) -> Simulation:
    """The closed-form checks, the final arrays (ufm/, features/ for `nclab visualize`), status finished."""
    H, W, b = params
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
    if targets.ndim == 1:
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
