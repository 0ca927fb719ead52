"""The resume state: every part of a run that must survive a restart, as named `Stateful` objects.

The pattern of torchtitan's checkpointer: each part answers `state_dict()` / `load_state_dict(state)`, and the
run's state is `{name: part.state_dict()}` saved and loaded together (runs.Run.save_state / load_state), so a
new component that carries state is one more entry. `encode` turns such a nested state (dicts with any keys,
lists, tuples, tensors, NumPy arrays, scalars) into flat tensors plus a JSON skeleton, the form safetensors
stores; `decode` is its inverse, so resume states load without unpickling anything.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from nclab import distributed, jsontext
from nclab.errors import warn

__all__ = ["Progress", "RNGState", "Stateful", "decode", "encode", "progress_problem"]


@runtime_checkable
class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class RNGState:
    """The global generators: Python `random`, NumPy's legacy global state (timm's Mixup draws from it),
    torch's CPU generator and every CUDA device's generator. Under torchrun every rank's generators are
    gathered (`ranks`, in rank order: dropout draws differ per rank) and each rank loads its own."""

    def state_dict(self) -> dict[str, Any]:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        own = {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": cuda,
        }
        return own if distributed.world() == 1 else {"ranks": distributed.gather_objects(own)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ranks = state.get("ranks", [state])
        if len(ranks) == distributed.world():
            state = ranks[distributed.rank()]
        else:
            state = ranks[0]
            if distributed.is_main():
                warn(
                    f"the resume state holds the random generators of {len(ranks)} process(es), this run "
                    f"has {distributed.world()}: every process takes the first one's (not bit-exact to an "
                    "unbroken run)"
                )
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class Progress:
    """The epoch counter and the metrics the loop tracks: the last measured record and the best test
    accuracy with its epoch."""

    epoch: int = 0
    last: dict[str, Any] = field(default_factory=dict)
    best_test_acc: float | None = None
    best_epoch: int | None = None

    def update(self, epoch: int, record: dict[str, Any] | None) -> None:
        """After epoch `epoch`; `record` is its metrics record, None for an unmeasured epoch."""
        self.epoch = epoch
        if record is not None:
            self.last = dict(record)
            acc = record.get("test_acc")
            if acc is not None and (self.best_test_acc is None or acc > self.best_test_acc):
                self.best_test_acc, self.best_epoch = acc, epoch

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def progress_problem(
    epoch: int, progress: dict[str, Any] | None, measured: list[Any], arrays: list[int], status_done: Any
) -> str | None:
    """Why a run's files do not fit its resume state of `epoch` (None when they do). A kill leaves at most
    the epoch in flight (epoch + 1) ahead of the state: its metrics line and arrays, dropped on resume; the
    status is written after the state, so it is never ahead. `measured`: metrics.jsonl's epochs in file
    order, `arrays`: the epochs of the saved arrays, `progress`: the state's Progress (None: no state)."""
    if progress is not None and progress.get("epoch") != epoch:
        return f"its progress says epoch {progress.get('epoch')!r}, its header {epoch}"
    if not all(type(e) is int for e in measured) or measured != sorted(set(measured)):
        return f"metrics.jsonl holds epochs {measured[:12]}, not one increasing line per epoch"
    ahead = max([*measured, *arrays], default=0)
    if ahead > epoch + 1:
        return f"metrics.jsonl or the arrays reach epoch {ahead}, beyond the epoch in flight ({epoch + 1})"
    if type(status_done) is not int or status_done > epoch:
        return f"status.json says {status_done!r} epochs done"
    last = ((progress or {}).get("last") or {}).get("epoch")
    logged = max([e for e in measured if e <= epoch], default=None)
    if logged != last:
        return f"its last measured epoch is {last}, metrics.jsonl's {logged}"
    return None


def encode(state: Any) -> tuple[dict[str, Tensor], str]:
    """(tensors named t0, t1, ..., JSON skeleton) of a nested state; tensors go to the CPU, NumPy arrays
    are stored as tensors with their dtype noted, dicts with non-string keys as item lists, inf and nan as
    {"$float": "inf"} (the skeleton is strict JSON)."""
    tensors: dict[str, Tensor] = {}

    def walk(obj: Any) -> Any:
        if isinstance(obj, Tensor | np.ndarray):
            key = f"t{len(tensors)}"
            if isinstance(obj, np.ndarray):
                tensors[key] = torch.from_numpy(obj.astype(np.int64) if obj.dtype.kind == "u" else obj)
                return {"$ndarray": key, "dtype": str(obj.dtype)}
            tensors[key] = obj.detach().cpu().contiguous()
            return {"$tensor": key}
        if isinstance(obj, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in obj):
                return {k: walk(v) for k, v in obj.items()}
            return {"$items": [[walk(k), walk(v)] for k, v in obj.items()]}
        if isinstance(obj, tuple):
            return {"$tuple": [walk(v) for v in obj]}
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        if isinstance(obj, float) and not math.isfinite(obj):  # strict JSON has no inf/nan (plateau's best)
            return {"$float": repr(obj)}
        if obj is None or isinstance(obj, bool | int | float | str):
            return obj
        raise TypeError(f"cannot store a {type(obj).__name__} in a resume state")

    skeleton = walk(state)
    return tensors, jsontext.dumps(skeleton)


def decode(tensors: dict[str, Tensor], skeleton: str) -> Any:
    """The nested state `encode` stored."""

    def walk(obj: Any) -> Any:
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        if not isinstance(obj, dict):
            return obj
        if "$tensor" in obj:
            return tensors[obj["$tensor"]]
        if "$ndarray" in obj:
            return tensors[obj["$ndarray"]].numpy().astype(obj["dtype"])
        if "$float" in obj:
            return float(obj["$float"])
        if "$tuple" in obj:
            return tuple(walk(v) for v in obj["$tuple"])
        if "$items" in obj:
            return {walk(k): walk(v) for k, v in obj["$items"]}
        return {k: walk(v) for k, v in obj.items()}

    return walk(json.loads(skeleton))
