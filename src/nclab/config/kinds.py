"""Run kinds: what a kind of run is (its top-level config class, progress total, default directory stem, the
function that runs it, whether it keeps a resume state and checkpoints to re-measure), asked by
`Run.create`, resume, `nclab measure` and sweeps instead of testing config classes. Training registers
itself in config/run.py, `nclab ufm` in ufm/config.py; a config tree names its kind by its `kind` key
(none: training). Kinds outside nclab.config are declared by module and imported on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from nclab.config.sections import validate
from nclab.errors import ConfigError

TRAIN = "train"  # the kind of a tree without a `kind` key


@dataclass(frozen=True)
class RunKind:
    config: type[BaseModel]  # the top-level config class (with `out`, `name`, `seed`, `to_yaml`)
    total: Callable[[Any], int]  # the progress total of a config: epochs, iterations
    stem: Callable[[Any], str]  # the run directory's name before its time stamp
    run: str  # "module:function" running a config: fn(cfg, on_record=...) into a new run directory
    resumable: bool = False  # keeps a resume state (`--resume`; a sweep continues a killed trial)
    measurable: bool = False  # keeps checkpoints that `nclab measure` re-measures

    def runner(self) -> Callable[..., Any]:
        module, function = self.run.split(":")
        return getattr(importlib.import_module(module), function)


_KINDS: dict[str, RunKind | str] = {"ufm": "nclab.ufm.config"}  # a str: the module that registers it


def register_kind(name: str, kind: RunKind) -> None:
    _KINDS[name] = kind


def run_kind(name: Any) -> RunKind:
    """The kind named by a tree's `kind` key (None: training); one ConfigError for an unknown name."""
    name = TRAIN if name is None else name
    entry = _KINDS.get(name) if isinstance(name, str) else None
    if entry is None:
        raise ConfigError(f"kind: {name!r} is not one of: {', '.join(sorted(_KINDS))} (or no kind key)")
    if isinstance(entry, str):
        importlib.import_module(entry)  # registers the kind
        entry = _KINDS[name]
    return entry


def kind_of(cfg: BaseModel) -> RunKind:
    """The kind of a validated top-level config."""
    return next(k for k in _KINDS.values() if isinstance(k, RunKind) and type(cfg) is k.config)


def config_model(kind: Any) -> type[BaseModel]:
    """The top-level config class of a tree's `kind` key: RunConfig without one, ufm.UFMConfig for `ufm`."""
    return run_kind(kind).config


def validate_any(tree: dict[str, Any]) -> BaseModel:
    """A RunConfig, or the config of the kind named by the tree's `kind` key (`kind: ufm`: UFMConfig)."""
    return validate(tree, config_model(tree.get("kind") if isinstance(tree, dict) else None))
