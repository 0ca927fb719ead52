"""CPU threads for a run (`train.threads`, default auto). Small models lose to thread overhead and contention:
the demo MLP took 139 s with torch's default threads and 22-30 s with one on a busy 2-core machine. `auto`
sizes the count by the work of one optimizer step, counted with torch's FlopCounterMode on one sample:
one thread per WORK_PER_THREAD FLOPs of forward + backward (3x the forward) over the batch, at least 1 and
at most torch's default (the physical cores). It depends on the workload and the machine alone, not on the
current load, so a resumed run picks the count it started with (CPU results are exact for a fixed count).
Measured: benchmarks/RESULTS.md, "CPU threads"."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["DEFAULT_THREADS", "WORK_PER_THREAD", "choose_threads", "step_flops"]

DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice at import: the physical cores
WORK_PER_THREAD = 4e9  # FLOPs of one step that keep one more thread busy (benchmarks/threads.py)


def step_flops(
    model: nn.Module, input_shape: tuple[int, ...], batch_size: int, tokens: bool = False
) -> float:
    """Forward + backward FLOPs of one optimizer step: 3x one sample's forward (eval mode, no grad, on the
    model's device; T token ids when the model `tokens`, whose data shape is (T, V)) times the batch size."""
    param = next(model.parameters())
    dtype = torch.long if tokens else param.dtype
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            shape = input_shape[:1] if tokens else input_shape  # token data: (T, V) -> T ids
            model(torch.zeros(1, *shape, device=param.device, dtype=dtype))
    finally:
        model.train(was_training)
    return 3.0 * counter.get_total_flops() * batch_size


def choose_threads(
    setting: int | str, model: nn.Module, input_shape: tuple[int, ...], batch_size: int, tokens: bool = False
) -> int:
    """`train.threads`: a given count as it is; `auto`: the step's FLOPs / WORK_PER_THREAD, in
    [1, DEFAULT_THREADS]."""
    if setting != "auto":
        return int(setting)
    flops = step_flops(model, input_shape, batch_size, tokens)
    return max(1, min(DEFAULT_THREADS, int(flops // WORK_PER_THREAD)))
