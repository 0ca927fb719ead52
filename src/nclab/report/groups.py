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

__all__ = [
    "Group",
    "differing",
    "flat_config",
    "group_runs",
    "setting_keys",
    "setting_text",
    "settings",
    "value_text",
]

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


def value_text(value: Any) -> str:
    """A config value as labels and ticks show it: a whole float as an integer (`model.width=32`)."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def setting_text(config: dict[str, Any], keys: list[str]) -> str:
    """`key=value, ...` of `keys` that `config` has, section names short (`optim=adam, optim.lr=0.001`)."""
    return ", ".join(f"{short(k)}={value_text(config[k])}" for k in keys if k in config)


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
    own option that only one setting has (focal's loss.gamma beside ce runs) is implied by its name. A
    section's name comes before its options (`optim`, then `optim.lr`)."""
    keys = differing([g.config for g in groups])
    return sorted(
        (k for k in keys if len({repr(g.config[k]) for g in groups if k in g.config}) > 1), key=short
    )


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
        g.label = setting_text(g.config, keys) or g.runs[0].name
    return out


def levels(groups: list[Group], key: str) -> list[Any]:
    """The distinct values of config key `key`: numbers ascending, then others by their text, None last."""
    unique = list({repr(g.config.get(key)): g.config.get(key) for g in groups}.values())

    def order(v: Any) -> tuple:
        number = isinstance(v, int | float)
        return v is None, not number, v if number else repr(v)

    return sorted(unique, key=order)


def check_keys(groups: list[Group], keys: dict[str, str | None]) -> None:
    """Each `--flag KEY` names a config key; one error line listing the keys that differ otherwise."""
    for flag, key in keys.items():
        if key is None or not any(key in g.config for g in groups):
            differ = ", ".join(setting_keys(groups)) or "none: the runs differ only in seed"
            what = "is missing" if key is None else f"{key}: not a config key of these runs"
            raise ConfigError(f"{flag} {what}; give a dotted config key (differing here: {differ})")


def facets(groups: list[Group], used: list[str]) -> list[tuple[str, list[Group]]]:
    """Groups split by the differing keys other than `used`: (title, groups), first-seen order."""
    keys = [k for k in setting_keys(groups) if k not in used]
    facets: dict[str, list[Group]] = {}
    for g in groups:
        facets.setdefault(setting_text(g.config, keys), []).append(g)
    return list(facets.items())
