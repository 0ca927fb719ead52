"""The run directory, the contract every command shares (docs/architecture.md):

    runs/<name>/config.yaml  metrics.jsonl  status.json  checkpoints/epoch_0001.safetensors
                figures/*.png|pdf|svg  events.* (TensorBoard)  measure.jsonl (nclab measure)
                scores/epoch_0001.safetensors (score samples)  features/epoch_0001.safetensors
                projector/ (TensorBoard embedding projector, at measure.save_features_at)

Whole-file writes are atomic (temp file + rename), so a killed run never leaves a half-written file.
Under torchrun only rank 0 writes (the other ranks' writes return without touching the directory).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from nclab import distributed
from nclab.config import RunConfig, read_yaml, validate
from nclab.errors import NclabError

__all__ = ["Run", "checkpoint_epochs", "load"]


def write_atomic(path: Path, data: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def checkpoint_epochs(epochs: int, save_every: int | None) -> set[int]:
    """Epochs that get a checkpoint: every `save_every`, or by default every epoch up to 200 epochs and
    100 evenly spaced ones beyond; the last epoch always."""
    if save_every is None:
        every = (
            set(range(1, epochs + 1))
            if epochs <= 200
            else {math.ceil(i * epochs / 100) for i in range(1, 101)}
        )
    else:
        every = set(range(save_every, epochs + 1, save_every))
    return every | {epochs}


def _json_value(value: Any) -> Any:
    """Floats that JSON cannot hold (nan, inf) are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Run:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, cfg: RunConfig | BaseModel, stem: str | None = None) -> Run:
        """A new run directory `<cfg.out>/<cfg.name>`, or `<stem>-<time>` by default (stem for a RunConfig:
        `<data>-<model>-<loss>-s<seed>`); `cfg` is any top-level config with `out`, `name` and `to_yaml`.
        Under torchrun rank 0 creates it and every rank gets its path."""
        if not distributed.is_main():
            return cls(distributed.broadcast(None))
        root = Path(cfg.out)
        if cfg.name:
            path = root / cfg.name
            if path.exists():
                raise NclabError(f"run directory {path} exists; choose another name=... or delete it")
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            stem = stem or f"{cfg.data.name}-{cfg.model.name}-{cfg.loss.name}-s{cfg.seed}"
            base = f"{stem}-{stamp}"
            path, i = root / base, 1
            while path.exists():
                i += 1
                path = root / f"{base}-{i}"
        (path / "checkpoints").mkdir(parents=True)
        (path / "figures").mkdir()
        run = cls(path)
        write_atomic(path / "config.yaml", cfg.to_yaml())
        run.set_status("running", epochs_done=0)
        distributed.broadcast(path)
        return run

    @property
    def name(self) -> str:
        return self.path.name

    def config(self) -> RunConfig | BaseModel:
        """The run's validated config: a RunConfig, or the config of the command named by its `kind` key
        (`kind: ufm` for `nclab ufm` runs, a `ufm.UFMConfig`)."""
        tree = read_yaml(self.path / "config.yaml")
        if tree.get("kind") == "ufm":
            from nclab.ufm import UFMConfig

            return validate(tree, UFMConfig)
        return validate(tree)

    def append_metrics(self, record: dict[str, Any]) -> None:
        if not distributed.is_main():
            return
        line = json.dumps({k: _json_value(v) for k, v in record.items()})
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def metrics(self) -> list[dict[str, Any]]:
        return self.read_jsonl("metrics.jsonl")

    def read_jsonl(self, name: str) -> list[dict[str, Any]]:
        path = self.path / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def write_jsonl(self, name: str, records: list[dict[str, Any]]) -> None:
        """Replace a whole JSONL file atomically (nclab measure's measure.jsonl)."""
        lines = [json.dumps({k: _json_value(v) for k, v in r.items()}) + "\n" for r in records]
        write_atomic(self.path / name, "".join(lines))

    def array_path(self, kind: str, epoch: int) -> Path:
        return self.path / kind / f"epoch_{epoch:04d}.safetensors"

    def save_arrays(self, kind: str, epoch: int, tensors: dict[str, torch.Tensor]) -> Path:
        """`<kind>/epoch_0001.safetensors` (checkpoints/, features/, scores/), written atomically."""
        path = self.array_path(kind, epoch)
        if not distributed.is_main():
            return path
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        save_file(tensors, tmp, metadata={"epoch": str(epoch)})
        os.replace(tmp, path)
        return path

    def array_epochs(self, kind: str) -> list[int]:
        return sorted(int(p.stem.split("_")[1]) for p in (self.path / kind).glob("epoch_*.safetensors"))

    def load_arrays(self, kind: str, epoch: int) -> dict[str, torch.Tensor]:
        path = self.array_path(kind, epoch)
        if not path.is_file():
            raise NclabError(f"{path} not found; {kind} exist for epochs {self.array_epochs(kind)}")
        try:
            return load_file(path)
        except (SafetensorError, OSError) as exc:
            raise NclabError(f"{path} is corrupt ({exc}); delete it and re-create it") from None

    def status(self) -> dict[str, Any]:
        return json.loads((self.path / "status.json").read_text())

    def set_status(self, state: str, epochs_done: int, error: str | None = None) -> None:
        if not distributed.is_main():
            return
        status = {"state": state, "epochs_done": epochs_done, "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if error:
            status["error"] = error
        write_atomic(self.path / "status.json", json.dumps(status, indent=1) + "\n")

    def checkpoint_path(self, epoch: int) -> Path:
        return self.array_path("checkpoints", epoch)

    def save_checkpoint(
        self, epoch: int, model: torch.nn.Module, loss_fn: torch.nn.Module | None = None
    ) -> Path:
        """The model's state dict, plus the loss's own tensors (learned centers) under `loss.`."""
        state = model.state_dict()
        if loss_fn is not None:
            state |= {f"loss.{k}": v for k, v in loss_fn.state_dict().items()}
        return self.save_arrays("checkpoints", epoch, state)

    def checkpoints(self) -> dict[int, Path]:
        return {e: self.checkpoint_path(e) for e in self.array_epochs("checkpoints")}

    def load_checkpoint(self, epoch: int) -> dict[str, torch.Tensor]:
        return self.load_arrays("checkpoints", epoch)

    def restore(self, epoch: int, model: torch.nn.Module, loss_fn: torch.nn.Module | None = None) -> None:
        """Load a checkpoint written by `save_checkpoint` into the model (and the loss's `loss.` tensors)."""
        state = self.load_checkpoint(epoch)
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("loss.")})
        if loss_fn is not None:
            loss_fn.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("loss.")})


def load(path: str | Path) -> Run:
    """Open an existing run directory."""
    run = Run(path)
    if not (run.path / "config.yaml").is_file():
        raise NclabError(f"{run.path} is not a run directory (no config.yaml)")
    return run
