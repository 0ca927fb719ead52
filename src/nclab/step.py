"""The training step and the speed switches around it (`train.precision`, `train.channels_last`,
`train.compile`, `train.cuda_graph`).

`TrainStep(x, y)` runs one optimizer step and returns the batch's summed per-sample loss and its number of
correct predictions as device tensors (no host sync); the count is None when the loss has no prediction rule
for the model (`Loss.predict` gives None). Precision is autocast (bf16, or fp16 with a gradient
scaler); metrics always accumulate in float64 downstream. `CapturedStep` records forward, loss, backward and
the optimizer step of one batch shape in one `torch.cuda.CUDAGraph` and replays it for every batch of that
shape (static input buffers; learning rates live in device tensors so schedules reach the graph); other
shapes (the tail batch) take the eager step. What cannot be captured (L-BFGS's closure, fp16's gradient
scaler, a CPU device, a failed capture) falls back to the eager step with one warning line.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from nclab import distributed
from nclab.config import TrainConfig
from nclab.errors import warn
from nclab.losses import Loss
from nclab.metrics.nc import hits

__all__ = ["CapturedStep", "TrainStep", "autocast", "build_step", "capture_blocker", "prepare_model"]

Outcome = tuple[Tensor, Tensor | None]  # (summed per-sample loss, correct predictions or None)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
WARMUP_STEPS = 3  # eager steps on a side stream before capture (lazy state: optimizer moments, cuBLAS)


def autocast(precision: str, device: torch.device, cache: bool = True) -> AbstractContextManager:
    """The autocast context of `train.precision` (nullcontext for fp32). `cache=False` while capturing a
    CUDA graph (autocast's weight-cast cache would be frozen into the graph)."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision], cache_enabled=cache)


def prepare_model(model: nn.Module, cfg: TrainConfig) -> nn.Module:
    """channels_last memory for convnets, then torch.compile of the forward in place (`nn.Module.compile`,
    so parameter names and checkpoints are unchanged). Compilation happens at the first batch."""
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.compile != "false":
        model.compile(mode=None if cfg.compile == "default" else cfg.compile)
    return model


class TrainStep:
    """One eager optimizer step: forward (under autocast), per-sample loss, backward, optional gradient
    clipping, optimizer step; an optimizer with `closure = True` (L-BFGS) steps through a closure."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Loss,
        optimizer: torch.optim.Optimizer,
        cfg: TrainConfig,
        reduce: Callable[[Tensor], Tensor] | None = None,
    ):
        """`reduce` turns per-sample losses into the objective: `loss_fn.reduce` by default, the global
        batch's under torchrun (`distributed.global_reduce`)."""
        self.model, self.loss_fn, self.optimizer, self.cfg = model, loss_fn, optimizer, cfg
        self.reduce = reduce or loss_fn.reduce
        self.device = next(model.parameters()).device
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        fp16 = cfg.precision == "fp16"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16) if fp16 else None

    def _forward(self, x: Tensor, y: Tensor, cache: bool = True) -> tuple[Tensor, Tensor | None]:
        """(per-sample loss in float32, predictions or None) of the model in its current mode."""
        with autocast(self.cfg.precision, self.device, cache):
            logits, h = self.model(x)
            logits = None if logits is None else logits.float()
            per_sample = self.loss_fn.per_sample(logits, h.float(), y)
        pred = self.loss_fn.predict(None if logits is None else logits.detach(), h.detach().float())
        return per_sample, pred

    def _update(self, x: Tensor, y: Tensor, cache: bool = True, set_to_none: bool = True) -> Outcome:
        """zero_grad, forward, backward, clip, step; returns (summed loss, correct predictions).
        `set_to_none=False` zeroes the .grad tensors in place (the CUDA graph's own gradient buffers)."""
        self.optimizer.zero_grad(set_to_none=set_to_none)
        per_sample, pred = self._forward(x, y, cache)
        loss = self.reduce(per_sample)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if self.cfg.clip_grad_norm:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.params, self.cfg.clip_grad_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if self.cfg.clip_grad_norm:
                nn.utils.clip_grad_norm_(self.params, self.cfg.clip_grad_norm)
            self.optimizer.step()
        return per_sample.detach().sum().double(), _count(pred, y)

    def _closure_step(self, x: Tensor, y: Tensor) -> Outcome:
        """One step of a closure-based optimizer on the batch (each closure a train-mode forward, as L-BFGS in
        Zhu et al. 2021; its objective adds the optimizer's `penalty()`); returns the loss and hits of the
        first evaluation."""
        first: list[Outcome] = []
        optimizer: Any = self.optimizer

        def closure() -> Tensor:
            optimizer.zero_grad(set_to_none=True)
            per_sample, pred = self._forward(x, y)
            objective = self.reduce(per_sample) + optimizer.penalty()
            objective.backward()
            if not first:
                first.append((per_sample.detach().sum().double(), _count(pred, y)))
            return objective

        optimizer.step(closure)
        return first[0]

    def __call__(self, x: Tensor, y: Tensor) -> Outcome:
        if getattr(self.optimizer, "closure", False):
            return self._closure_step(x, y)
        return self._update(x, y)

    def state_dict(self) -> dict[str, Any]:
        """The gradient scaler's state (fp16), for the run's resume state."""
        return {} if self.scaler is None else {"scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])


class CapturedStep(TrainStep):
    """The step replayed from one CUDA graph for the batch shape it was captured with.

    The first WARMUP_STEPS batches train eagerly on a side stream (they initialise the optimizer state),
    the next is captured and replayed; each replay copies the batch into the static buffers. Learning rates
    become one-element device tensors that the graph reads, refreshed from the param groups before every
    replay (`_sync_lr`), so any scheduler works. The optimizer must be capturable (fused SGD/Adam/AdamW)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        optimizer = self.optimizer
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: tuple[Tensor, ...] = ()
        self.warm = 0
        self.eager = False  # set when the capture failed
        self.lrs = [torch.tensor(float(g["lr"]), device=self.device) for g in optimizer.param_groups]
        for group, lr in zip(optimizer.param_groups, self.lrs, strict=True):
            group["lr"] = lr
        self.stream = torch.cuda.Stream(self.device)

    def _sync_lr(self) -> None:
        """A scheduler may have replaced a group's lr tensor by a float: copy it into the graph's tensor."""
        for group, lr in zip(self.optimizer.param_groups, self.lrs, strict=True):
            if group["lr"] is not lr:
                lr.fill_(float(group["lr"]))
                group["lr"] = lr

    def _capture(self, x: Tensor, y: Tensor) -> None:
        static_x, static_y = x.clone(), y.clone()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=self.stream):
            loss_sum, hits = self._update(static_x, static_y, cache=False)
        self.graph, self.static = graph, (static_x, static_y, loss_sum, hits)

    def __call__(self, x: Tensor, y: Tensor) -> Outcome:
        self._sync_lr()
        if self.eager:
            return self._update(x, y)
        if self.graph is None and self.warm < WARMUP_STEPS:
            self.warm += 1
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.stream):
                out = self._update(x, y)
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
            return out
        if self.graph is None:
            try:
                self._capture(x, y)
            except RuntimeError as exc:  # an op that syncs or allocates on the host inside the step
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                warn(f"train.cuda_graph: the step could not be captured ({reason}); training eagerly")
                self.eager = True
                return self._update(x, y)
        static_x, static_y, loss_sum, hits = self.static
        if x.shape != static_x.shape or y.shape != static_y.shape or y.dtype != static_y.dtype:
            # the tail batch: grads are the graph's static tensors; zero them in place, don't free them
            return self._update(x, y, set_to_none=False)
        static_x.copy_(x)
        static_y.copy_(y)
        self.graph.replay()
        return loss_sum.clone(), None if hits is None else hits.clone()


def _count(pred: Tensor | None, y: Tensor) -> Tensor | None:
    """Correct predictions of the batch (`metrics.nc.hits`), None without predictions."""
    return None if pred is None else hits(pred, y)


def capture_blocker(device: torch.device, optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> str | None:
    """Why the step cannot be captured in a CUDA graph on `device`, or None when it can."""
    if device.type != "cuda":
        return f"needs a CUDA device (this run is on {device.type})"
    if distributed.world() > 1:
        return "is not captured under torchrun (DistributedDataParallel's gradient all-reduce runs eagerly)"
    if getattr(optimizer, "closure", False):
        name = type(optimizer).__name__
        return f"cannot capture {name} (its closure re-evaluates the model a data-dependent number of times)"
    if cfg.precision == "fp16":
        return "cannot capture fp16's gradient scaler (it checks for inf on the host); use precision=bf16"
    if not all(g.get("fused") or g.get("capturable") for g in optimizer.param_groups):
        return f"needs a fused or capturable optimizer; {type(optimizer).__name__} here is neither"
    return None


def build_step(
    model: nn.Module,
    loss_fn: Loss,
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> TrainStep:
    """The captured step when `train.cuda_graph` and the setup allow it, else the eager one (with one
    warning line saying why)."""
    reason = capture_blocker(next(model.parameters()).device, optimizer, cfg) if cfg.cuda_graph else None
    if reason:
        warn(f"train.cuda_graph {reason}; training eagerly")
    kind = CapturedStep if cfg.cuda_graph and not reason else TrainStep
    return kind(model, loss_fn, optimizer, cfg, reduce)
