"""One run across processes: `torchrun --nproc-per-node N -m nclab train ...` (DistributedDataParallel).

torchrun starts N copies with RANK, LOCAL_RANK and WORLD_SIZE set; `setup` joins them in one process group
(NCCL on GPUs, one GPU per process; gloo on the CPU). Every rank draws the same seeded permutation, and
each global batch of `train.batch_size` is split between the ranks (rank r takes positions r, r + N, ...),
so N processes take the same optimizer steps as one process with the same global batch:
the loss of rank r is rescaled (`global_reduce`) so that DDP's gradient average is the gradient of the
mean (or sum) over the whole global batch, whatever the split of an uneven last batch.

A measured epoch reads contiguous shards of the train and test splits; each rank's accumulators then
become the whole split's with `NCAccumulator.merge` (metrics/stream.py, exact), to which this module only
supplies the collectives (`all_reduce`, `gather_rows`), so every metric is the whole dataset's. Only rank 0
writes the run directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from nclab.errors import ConfigError

T = TypeVar("T")

__all__ = [
    "all_reduce",
    "broadcast",
    "gather_objects",
    "gather_rows",
    "global_reduce",
    "is_main",
    "setup",
    "shard",
    "sum_over_ranks",
    "world",
    "wrap",
]


def world() -> int:
    """Processes in the run: WORLD_SIZE under torchrun, else 1."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """True on the process that writes the run directory (rank 0, or the only one)."""
    return rank() == 0


def broadcast(value: T) -> T:
    """Rank 0's value on every rank (any picklable object)."""
    if world() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(value: T) -> list[T]:
    """Every rank's value (any picklable object), in rank order; `[value]` in one process."""
    if world() == 1:
        return [value]
    out: list[T] = [value] * world()
    dist.all_gather_object(out, value)
    return out


def setup(device: torch.device) -> torch.device:
    """Join torchrun's process group if WORLD_SIZE > 1; the device this rank trains on (cuda:LOCAL_RANK)."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    dist.init_process_group(
        "nccl" if device.type == "cuda" else "gloo", device_id=device if device.type == "cuda" else None
    )
    return device


def wrap(
    model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, multilabel: bool
) -> nn.Module:
    """The model in DistributedDataParallel; one ConfigError line for what one process only supports."""
    if not getattr(optimizer, "shards", True):
        raise ConfigError(
            f"{type(optimizer).__name__} runs its line search per process; under torchrun use sgd, adam or "
            "adamw"
        )
    if any(p.requires_grad for p in loss_fn.parameters()):
        raise ConfigError(
            "this loss learns its own parameters (centers), which torchrun does not synchronise; "
            "train it in one process (nclab train ...)"
        )
    if multilabel:
        raise ConfigError("multi-label datasets are measured in one process; train them with nclab train ...")
    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard(n: int) -> slice:
    """This rank's contiguous part of n items (rank r: [r n / N, (r + 1) n / N))."""
    r, w = rank(), world()
    return slice(r * n // w, (r + 1) * n // w)


def global_reduce(reduction: str) -> Callable[[Tensor], Tensor]:
    """The loss reduction that makes DDP's gradient average that of one process on the global batch:
    mean: sum_i l_i * N / n_global (n_global all-reduced on the device, no host sync); sum: sum_i l_i * N."""

    def reduce(per_sample: Tensor) -> Tensor:
        if reduction == "sum":
            return per_sample.sum() * world()
        n = torch.tensor(float(len(per_sample)), device=per_sample.device, dtype=per_sample.dtype)
        dist.all_reduce(n)
        return per_sample.sum() * (world() / n)

    return reduce


def sum_over_ranks(*values: Tensor | float | int) -> list[float]:
    """Sums of scalars over the ranks (one all-reduce), as Python floats."""
    if world() == 1:
        return [float(v) for v in values]
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    t = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device) for v in values])
    dist.all_reduce(t)
    return t.tolist()


def all_reduce(t: Tensor) -> None:
    """Sum `t` over the ranks, in place."""
    dist.all_reduce(t)


def gather_rows(t: Tensor) -> list[Tensor]:
    """Every rank's tensor (rows may differ in number), in rank order."""
    n = torch.tensor([len(t)], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(world())]
    dist.all_gather(sizes, n)
    rows = max(int(s) for s in sizes)
    padded = torch.zeros((rows, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[: len(t)] = t
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return [p[: int(s)] for p, s in zip(parts, sizes, strict=True)]


def finish() -> None:
    """Leave torchrun's process group (a no-op in one process)."""
    if dist.is_initialized():
        dist.destroy_process_group()
