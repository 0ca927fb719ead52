"""Runs grouped into settings: runs whose configs differ only in `seed` form one `Group` (one line with a
band in a figure, one mean +- std row in `nclab compare`). A group's label names the config keys whose
values differ between the groups (`optim=adam, optim.lr=0.001`), never the run directory names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

from nclab.errors import ConfigError
from nclab.runs import Run

__all__ = ["Group", "differing", "flat_config", "group_runs", "setting_keys", "settings"]

IGNORED = {"name", "out"}  # top-level keys that never make runs different
SEED_KEYS = {"seed"}
# where the data lives, the device and what gets measured: the same experiment either way
NOT_SETTINGS = ("data.root", "data.download", "train.device", "measure.")


def flat_config(run: Run) -> dict[str, Any]:
    """The run's resolved config as dotted keys (`optim.lr`): the keys that define the experiment."""
    return settings(run.config())


def settings(config: BaseModel) -> dict[str, Any]:
    """A resolved config as dotted keys (`optim.lr`), without those that do not change the experiment
    (`name`, `out`, `data.root`, `data.download`, `train.device`, `measure.*`)."""

    def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            if isinstance(value, dict):
                out |= flat(value, f"{prefix}{key}.")
            elif key not in IGNORED or prefix:
                out[f"{prefix}{key}"] = value
        return out

    return {k: v for k, v in flat(config.model_dump()).items() if not k.startswith(NOT_SETTINGS)}


def differing(configs: list[dict[str, Any]]) -> list[str]:
    """Keys whose values are not all equal across `configs` (absent counts as None), sorted: the columns of
    `nclab compare`, which show a component's own options (None for runs of other components)."""
    keys = sorted(set().union(*configs))
    return [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]


def short(key: str) -> str:
    """`optim.name` -> `optim` (a section's name field stands for the section)."""
    return key.removesuffix(".name")


@dataclass
class Group:
    """Runs of one setting (equal configs up to `seed`); `config` is that setting's flat config."""

    runs: list[Run]
    config: dict[str, Any]
    label: str = ""
    records: list[list[dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.records = [run.metrics() for run in self.runs]

    @property
    def name(self) -> str:
        """The run directory names joined by ` + ` (sweep trial names hold commas)."""
        return " + ".join(run.name for run in self.runs)

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs (E,), values (runs, E)) over the union of the runs' measured epochs; NaN where a run has
        no value (not measured, null, absent)."""
        epochs = sorted({r["epoch"] for recs in self.records for r in recs if r.get(key) is not None})
        column = {e: i for i, e in enumerate(epochs)}
        values = np.full((len(self.runs), len(epochs)), np.nan)
        for i, recs in enumerate(self.records):
            for r in recs:
                if r.get(key) is not None:
                    values[i, column[r["epoch"]]] = r[key]
        return np.asarray(epochs, dtype=float), values

    def final(self, key: str) -> np.ndarray:
        """Each run's value of `key` in its last measured record (NaN when absent or null)."""
        last = [recs[-1].get(key) if recs else None for recs in self.records]
        return np.array([np.nan if v is None else v for v in last], dtype=float)


def setting_keys(groups: list[Group]) -> list[str]:
    """Config keys whose values differ between the groups that have them (the legend's keys): a component's
    own option that only one setting has (focal's loss.gamma beside ce runs) is implied by its name."""
    return [
        k
        for k in differing([g.config for g in groups])
        if len({repr(g.config[k]) for g in groups if k in g.config}) > 1
    ]


def group_runs(runs: list[Run], by_seed: bool = True) -> list[Group]:
    """Groups in first-seen order: with `by_seed`, runs equal up to `seed` share one group; otherwise one
    group per run. Labels: `key=value` of the differing keys, or the run name when no key differs."""
    if not runs:
        raise ConfigError("no runs given; pass one or more run directories")
    groups: dict[str, Group] = {}
    for run in runs:
        config = flat_config(run)
        if by_seed:
            config = {k: v for k, v in config.items() if k not in SEED_KEYS}
        key = repr(sorted(config.items())) if by_seed else str(run.path)
        if key in groups:
            groups[key].runs.append(run)
            groups[key].records.append(run.metrics())
        else:
            groups[key] = Group([run], config)
    out = list(groups.values())
    keys = setting_keys(out)
    for g in out:
        g.label = ", ".join(f"{short(k)}={g.config[k]}" for k in keys if k in g.config) or g.runs[0].name
    return out
