"""The run directory, the contract every command shares (docs/architecture.md). `Run` owns every file in it:

    runs/<name>/config.yaml  status.json  metrics.jsonl  events.* (TensorBoard)  labels.safetensors
                checkpoints/state.safetensors       the resume state (every Stateful part), newest only
                checkpoints/epoch_0010.safetensors  sparse analysis checkpoints (model, loss tensors)
                scores/ features/ classes/ epoch_XXXX.safetensors   measure.jsonl (nclab measure)
                figures/*.png|pdf|svg               projector/ (TensorBoard embedding projector)
                .lock                               held (flock) by the process writing the run

Every file goes through nclab.files (one reader, one writer): a whole-file write is temp file + fsync +
rename + fsync of the directory, so a kill leaves the old file or the new one; metrics.jsonl lines are
appended with one write + fsync each, and a torn last line (a kill during the append) is dropped on resume
and ignored, with a warning, by readers. Every safetensors file carries a CRC-32 of its tensors and header
metadata, checked on load; the resume state's metadata (epoch, progress, config) is also checked against
metrics.jsonl, the arrays and status.json (`read_state`). Under torchrun only rank 0 writes: the other
ranks' writes, lock and TensorBoard writer return without touching the directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from nclab import distributed, files, jsontext
from nclab.config import RunConfig, kind_of, stored_tree, validate_any
from nclab.errors import ConfigError, CorruptFile, ReadError, RunError, RunLocked, WriteError, warn
from nclab.metrics.epoch import ARRAYS
from nclab.state import Stateful, decode, encode, progress_problem

__all__ = ["DEFAULT_CHECKPOINTS", "Run", "checkpoint_epochs", "load"]

DEFAULT_CHECKPOINTS = 10  # analysis checkpoints of the default policy (log-spaced, the last included)
STATE = "state"  # checkpoints/state.safetensors


def checkpoint_epochs(epochs: int, save_every: int | None) -> set[int]:
    """Epochs that get an analysis checkpoint: every `save_every`, or by default about 10 log-spaced
    ones, round(E^(i/9)) for i = 0..9 (1, 2, 3, 6, 11, 19, 34, 62, 111, 200 for E = 200); the last always."""
    if save_every is not None:
        return set(range(save_every, epochs + 1, save_every)) | {epochs}
    n = DEFAULT_CHECKPOINTS - 1
    return {round(epochs ** (i / n)) for i in range(n + 1)} | {epochs}


class Run:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._warned: set[str] = set()  # files whose torn last line was reported (once per Run)

    @classmethod
    def create(cls, cfg: RunConfig | BaseModel, stem: str | None = None) -> Run:
        """The new run directory `out/name`, or `<stem>-<time>` by default (stem for a RunConfig:
        `<data>-<model>-<loss>-s<seed>`), with its config.yaml and status; refuses an existing one. `cfg` is
        any top-level config with `out`, `name` and `to_yaml`. Nothing is left behind if this fails. Under
        torchrun rank 0 creates it and every rank gets its path."""
        if not distributed.is_main():
            return cls(distributed.broadcast(None))
        root = Path(cfg.out)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise ConfigError(f"out={cfg.out} is a file; give a directory for the runs") from None
        except OSError as exc:
            raise ConfigError(
                f"out={cfg.out} cannot be created ({exc.strerror}); give a writable directory"
            ) from None
        if not root.is_dir():
            raise ConfigError(f"out={cfg.out} is not a directory; give a directory for the runs")
        if cfg.name is not None:
            path = root / files.check_name(cfg.name)
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            stem = stem or kind_of(cfg).stem(cfg)
            base = f"{stem}-{stamp}"
            path, i = root / base, 1
            while path.exists():
                i += 1
                path = root / f"{base}-{i}"
        try:
            path.mkdir()
        except FileExistsError:
            raise ConfigError(
                f"run directory {path} exists; continue it with `nclab train --resume {path}` or choose "
                "another name=..."
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot create {path} ({exc.strerror}); give a writable out=...") from None
        run = cls(path)
        try:
            for sub in ("checkpoints", "figures"):
                (path / sub).mkdir()
            run.write_config(cfg)
            run.set_status("running", epochs_done=0, epochs=kind_of(cfg).total(cfg))
        except (OSError, WriteError):
            shutil.rmtree(path, ignore_errors=True)
            raise
        distributed.broadcast(path)
        return run

    @property
    def name(self) -> str:
        return self.path.name

    # --- config, status, lock -------------------------------------------------------------------------
    def config(self) -> RunConfig | BaseModel:
        """The run's validated config: a RunConfig, or the config of the command named by its `kind` key
        (`kind: ufm` for `nclab ufm` runs, a `ufm.UFMConfig`)."""
        tree = files.read_yaml(self.path / "config.yaml", "run config")
        if not tree:
            raise RunError(f"{self.path}/config.yaml is empty; restore the run's config, nothing was written")
        try:
            return validate_any(stored_tree(tree))
        except ConfigError as exc:
            raise RunError(f"{self.path}/config.yaml is not a valid run config ({exc})") from None

    def write_config(self, cfg: RunConfig) -> None:
        files.write_atomic(self.path / "config.yaml", cfg.to_yaml())

    def status(self) -> dict[str, Any]:
        try:
            status = json.loads(files.read_text(self.path / "status.json"))
        except (ReadError, ValueError):
            status = None
        return status if isinstance(status, dict) else {"state": "unknown", "epochs_done": 0}

    def set_status(
        self, state: str, epochs_done: int, epochs: int | None = None, error: str | None = None
    ) -> None:
        """status.json: running | finished | failed | interrupted, epochs done of `epochs` (default: as
        before), the error line."""
        if epochs is None:
            epochs = self.status().get("epochs")
        status = {
            "state": state,
            "epochs_done": epochs_done,
            "epochs": epochs,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "pid": os.getpid(),
        }
        if error:
            status["error"] = error
        files.write_atomic(self.path / "status.json", jsontext.dumps(status, indent=1) + "\n")

    @property
    def lock_path(self) -> Path:
        return self.path / ".lock"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's OS file lock (flock) while writing. The kernel drops it when the holder dies, so a
        lock file left by a dead process is taken over; a live holder gives RunLocked naming its pid."""
        if not distributed.is_main():
            yield
            return
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise files.write_error(self.lock_path, exc, kept=False) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunLocked(
                f"{self.path} is being written by process {holder} (it holds {self.lock_path}); wait for it "
                f"to finish or stop it (kill {holder})"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            os.close(fd)

    def locked(self) -> bool:
        """True while a live process holds the lock."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    def state_name(self) -> str:
        """The status, with `running` shown as `killed` when the process died: the lock is free, or held
        only by a child of the dead process (a data loader worker) while the pid it names is gone."""
        state = self.status().get("state", "unknown")
        return "killed" if state == "running" and not (self.locked() and self._holder_alive()) else state

    def _holder_alive(self) -> bool:
        try:
            pid = int(self.lock_path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return True  # no pid to check: the lock decides
        try:
            os.kill(pid, 0) if pid > 0 else None
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's live process
        return True

    # --- metrics --------------------------------------------------------------------------------------
    def append_metrics(
        self, record: dict[str, Any], tag: Callable[[str], str] | None = None, writer: Any = None
    ) -> None:
        """One whole line in metrics.jsonl (one write, fsync); the numbers also go to TensorBoard under
        `tag(key)` (computed first: a tag function that refuses a key stops before anything is written)."""
        tags = {k: tag(k) if tag else k for k in record}
        if not distributed.is_main():
            return
        files.append_line(self.path / "metrics.jsonl", jsontext.dumps(record) + "\n")
        if writer is not None:
            for key, value in record.items():
                if key != "epoch" and isinstance(value, int | float):
                    writer.add_scalar(tags[key], value, record["epoch"])

    def tensorboard(self, purge_step: int | None = None, folder: str = "") -> Any:
        """The run's TensorBoard writer (into `folder` of the run dir when given: the projector's);
        `purge_step` hides events of epochs >= it left by a killed run; its write failures (its writer
        thread's too) are WriteError. None on ranks other than 0."""
        from torch.utils.tensorboard import SummaryWriter

        if not distributed.is_main():
            return None
        where = self.path / folder
        return files.Guarded(lambda: SummaryWriter(log_dir=str(where), purge_step=purge_step), where)

    def metrics(self) -> list[dict[str, Any]]:
        return self.read_jsonl("metrics.jsonl")

    def read_jsonl(self, name: str) -> list[dict[str, Any]]:
        """The records of a JSONL file; a torn last line (a kill during an append) is ignored with a warning,
        any other unreadable line is a RunError naming the file and line."""
        return self._jsonl(name)[0]

    def _jsonl(self, name: str, quiet: bool = False) -> tuple[list[dict[str, Any]], bool]:
        path = self.path / name
        if not path.exists():
            return [], False
        text = files.read_text(path, "run file")
        lines = text.split("\n")
        records, torn = [], False
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except ValueError:
                if i == len(lines):  # no newline after it: the append was cut
                    torn = True
                    if not quiet and name not in self._warned:
                        self._warned.add(name)
                        warn(f"{path}: ignoring a torn last line (the run was killed while appending)")
                    continue
                raise RunError(f"{path} line {i} is not a JSON record; fix or delete that line") from None
            records.append(record)
        return records, torn

    def write_jsonl(self, name: str, records: list[dict[str, Any]]) -> None:
        """Replace a whole JSONL file atomically (nclab measure's measure.jsonl, resume's trimmed metrics)."""
        lines = [jsontext.dumps(r) + "\n" for r in records]
        files.write_atomic(self.path / name, "".join(lines))

    # --- arrays and checkpoints -----------------------------------------------------------------------
    def array_path(self, kind: str, epoch: int) -> Path:
        return self.path / kind / f"epoch_{epoch:04d}.safetensors"

    def save_arrays(self, kind: str, epoch: int, tensors: dict[str, torch.Tensor]) -> Path:
        """`<kind>/epoch_0001.safetensors` (checkpoints/, and the ARRAYS kinds), atomic and checksummed."""
        path = self.array_path(kind, epoch)
        if not distributed.is_main():
            return path
        files.save_tensors(path, tensors, {"epoch": str(epoch)})
        return path

    def save_measured(self, epoch: int, arrays: Mapping[str, dict[str, torch.Tensor]]) -> None:
        """The arrays of a measured epoch (`Measurement.arrays`: kinds of `metrics.epoch.ARRAYS`), one
        `<kind>/epoch_XXXX.safetensors` each, in the order of ARRAYS; the one writer for training, `nclab
        measure` and `visualize`."""
        unknown = set(arrays) - set(ARRAYS)
        if unknown:
            raise ValueError(f"unknown array kinds {sorted(unknown)}; a measured epoch saves {ARRAYS}")
        for kind in ARRAYS:
            if arrays.get(kind):
                self.save_arrays(kind, epoch, arrays[kind])

    def array_epochs(self, kind: str) -> list[int]:
        return sorted(int(p.stem.split("_")[1]) for p in (self.path / kind).glob("epoch_*.safetensors"))

    def load_arrays(self, kind: str, epoch: int) -> dict[str, torch.Tensor]:
        path = self.array_path(kind, epoch)
        if not path.exists():
            raise RunError(f"{path} not found; {kind} exist for epochs {self.array_epochs(kind)}")
        return files.load_tensors(path)[0]

    def readable_arrays(self, kind: str, epochs: list[int]) -> dict[int, dict[str, torch.Tensor]]:
        """The arrays of `epochs` that load; a corrupt or truncated file is skipped with a warning."""
        found = {}
        for epoch in epochs:
            try:
                found[epoch] = self.load_arrays(kind, epoch)
            except CorruptFile as exc:
                warn(f"{exc}; skipped")
        return found

    def checkpoint_path(self, epoch: int) -> Path:
        return self.array_path("checkpoints", epoch)

    def save_checkpoint(
        self, epoch: int, model: torch.nn.Module, loss_fn: torch.nn.Module | None = None
    ) -> Path:
        """An analysis checkpoint: the model's state dict, plus the loss's own tensors (learned centers)
        under `loss.`; no optimizer (that is in the resume state)."""
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
        try:
            model.load_state_dict({k: v for k, v in state.items() if not k.startswith("loss.")})
            if loss_fn is not None:
                loss_fn.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("loss.")})
        except RuntimeError as exc:
            detail = next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), str(exc))[:200]
            raise RunError(
                f"{self.checkpoint_path(epoch)} does not fit the model of {self.path}/config.yaml "
                f"({detail}); restore the run's original config.yaml"
            ) from None

    def save_labels(self, train_y: torch.Tensor) -> None:
        """The run's train labels (data.random_labels), read back by measure and resume."""
        files.save_tensors(self.path / "labels.safetensors", {"train_y": train_y}, {})

    def labels(self) -> torch.Tensor | None:
        path = self.path / "labels.safetensors"
        return files.load_tensors(path)[0]["train_y"] if path.exists() else None

    # --- the resume state -----------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.path / "checkpoints" / f"{STATE}.safetensors"

    def save_state(self, parts: Mapping[str, Stateful], epoch: int, cfg: BaseModel) -> None:
        """Every part's state dict in one file, replacing the previous one atomically, with the epoch and the
        config it was trained under (`train.resume` checks them; the checksum covers them)."""
        tensors, skeleton = encode({name: part.state_dict() for name, part in parts.items()})
        metadata = {"epoch": str(epoch), "state": skeleton, "config": cfg.to_yaml()}
        files.save_tensors(self.state_path, tensors, metadata, cover_metadata=True)

    def read_state(self) -> tuple[int, dict[str, Any], str | None]:
        """(epoch, the parts' states, the config YAML it was saved with) of the resume state, (0, {}, None)
        when there is none yet; RunError when metrics.jsonl, the checkpoints or status.json do not fit it
        (state.progress_problem: an edited progress, another run's state, lost lines)."""
        epoch, state, metadata = 0, {}, {}
        if self.state_path.exists():
            tensors, metadata = files.load_tensors(self.state_path)
            try:
                epoch, state = int(metadata["epoch"]), decode(tensors, metadata["state"])
            except (KeyError, ValueError, TypeError):
                raise RunError(f"{self.state_path} is not a resume state; delete it or restore it") from None
        problem = progress_problem(
            epoch,
            state.get("progress"),
            [r.get("epoch") for r in self._jsonl("metrics.jsonl", quiet=True)[0]],
            [e for kind in ("checkpoints", *ARRAYS) for e in self.array_epochs(kind)],
            self.status().get("epochs_done", 0),
        )
        if problem:
            raise RunError(
                f"{self.path} does not fit its resume state of epoch {epoch} ({problem}); restore the run's "
                "files, nothing was written"
            )
        return epoch, state, metadata.get("config")

    def load_parts(self, parts: Mapping[str, Stateful], state: dict[str, Any]) -> None:
        """Load the states `read_state` returned into the parts; RunError naming a part that does not fit."""
        missing = sorted(set(parts) - set(state))
        if missing:
            raise RunError(f"{self.state_path} lacks the state of {', '.join(missing)} (another version)")
        for name, part in parts.items():
            try:
                part.load_state_dict(state[name])
            except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
                detail = next((ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()), str(exc))
                raise RunError(
                    f"{self.state_path}: the saved {name} does not fit this run's {name} ({detail[:160]}); "
                    f"restore the run's config.yaml"
                ) from None

    def rewind(self, epoch: int) -> None:
        """Drop what a killed run wrote after its resume state of `epoch`: metrics lines of later epochs (and
        a torn last line), later checkpoints and measured arrays (every kind of ARRAYS), leftover temp
        files."""
        if not distributed.is_main():
            return
        records, torn = self._jsonl("metrics.jsonl", quiet=True)
        kept = [r for r in records if r.get("epoch", 0) <= epoch]
        if torn or len(kept) != len(records):
            self.write_jsonl("metrics.jsonl", kept)
        for kind in ("checkpoints", *ARRAYS):
            for e in self.array_epochs(kind):
                if e > epoch:
                    self.array_path(kind, e).unlink()
            for tmp in (self.path / kind).glob(".*.tmp"):
                tmp.unlink()
        for tmp in self.path.glob(".*.tmp"):
            tmp.unlink()

    def disk_use(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


def load(path: str | Path) -> Run:
    """Open an existing run directory."""
    run = Run(path)
    if not (run.path / "config.yaml").is_file():
        raise RunError(f"{run.path} is not a run directory (no config.yaml)")
    return run
