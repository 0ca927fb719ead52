"""`nclab sweep FILE.yaml`: a grid of runs as Ray Tune trials, one normal run directory per trial.

A sweep file names a base configuration and the values to vary:

    base: {preset: demo, epochs: 3, model.width: 64}    # preset and/or config: FILE, then key: value settings
    grid: {loss: [ce, mse], seed: [0, 1]}                # every combination (Cartesian product)
    zip: {optim.lr: [0.1, 0.01], optim.step_size: [40, 80]}    # walked together: one more axis
    random: {samples: 4, seed: 0, keys: {optim.weight_decay: {loguniform: [1.0e-4, 1.0e-2]}}}
    out: sweeps/losses                                   # the sweep directory (a shared path on a cluster)
    resources: {cpu: 1, gpu: 0.25}                       # per trial; fractional GPUs pack trials onto one GPU
    retries: 1                                           # attempts after a trial's first failure
    max_concurrent: null                                 # trials at once (default: as resources allow)
    ranks: 1                                             # > 1: each trial is one torchrun DDP run
    report: {heatmap: [model.width, epochs], metrics: [nc1, test_acc]}   # heat maps besides curves and grid

`base: {kind: ufm, ...}` makes the trials UFM simulations (`nclab ufm`, ufm.UFMConfig), not training runs.

The trials are the product of the grid's lists, the zipped lists (one axis) and the random samples (one
axis, drawn with Ray Tune's distributions from `random.seed`). Every trial's config is resolved and
validated before Ray starts, so a bad key fails the whole sweep with one error line and no trial runs.
Trial `loss=ce,seed=0` writes `<out>/loss=ce,seed=0/` (named by the keys that differ between trials) by
calling `nclab.train.train`; each measured epoch's metrics go to `tune.report` (the Tune table shows nc1 and
test accuracy). Rerunning a sweep skips finished trials and continues interrupted ones from their resume
state (`train.resume`). Running the trials on Ray: sweep_tune.py.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nclab.config import RunConfig, canonical_key, config_model, describe, resolve
from nclab.errors import ConfigError, RunError
from nclab.files import read_yaml, write_atomic
from nclab.runs import Run

__all__ = ["Failure", "Sweep", "SweepResult", "Trial", "load_sweep", "report"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resources(_Strict):
    cpu: float = Field(1.0, gt=0, description="CPUs per trial")
    gpu: float = Field(0.0, ge=0, description="GPUs per trial; a fraction packs trials onto one GPU")

    @field_validator("gpu")
    @classmethod
    def _whole_above_one(cls, v: float) -> float:
        if v > 1 and v != int(v):
            raise ValueError("a trial takes a fraction of one GPU or a whole number of GPUs")
        return v


class Distribution(_Strict):
    """One of Ray Tune's sampling domains: uniform/loguniform [low, high], randint [low, high), choice."""

    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = None
    choice: list[Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> Distribution:
        given = [k for k, v in self.model_dump().items() if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of uniform, loguniform, randint, choice")
        return self

    def domain(self):
        from ray import tune

        kind, args = next((k, v) for k, v in self.model_dump().items() if v is not None)
        return tune.choice(args) if kind == "choice" else getattr(tune, kind)(*args)


class RandomSpec(_Strict):
    samples: int = Field(ge=1, description="random draws, each one more trial (times the grid)")
    seed: int = 0
    keys: dict[str, Distribution] = Field(min_length=1)


class ReportSpec(_Strict):
    """What `report` draws besides the compare table: curves and NC grid always, heat maps when asked."""

    heatmap: tuple[str, str] | None = Field(
        None,
        description="[x, y]: final metrics over two config keys, one row per setting of the other keys "
        "(Zhou et al. 2022: [model.width, train.epochs])",
    )
    metrics: list[str] | None = Field(
        None, description="the heat maps' and curves' metrics (default: nc1, nc2_h, nc3, nc4_ncc, test_acc)"
    )
    baseline: str | None = Field(
        None,
        description="key=value (loss=ce): heat maps of |setting - baseline| per cell, as Zhou et al. 2022",
    )


class Sweep(_Strict):
    base: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    zip: dict[str, list[Any]] = {}
    random: RandomSpec | None = None
    out: str | None = Field(None, description="sweep directory; default sweeps/<file stem>")
    resources: Resources = Resources()
    retries: int = Field(0, ge=0)
    max_concurrent: int | None = Field(None, ge=1)
    ranks: int = Field(1, ge=1, description="processes per trial; > 1 runs the trial under torchrun (DDP)")
    report: ReportSpec = ReportSpec()

    @field_validator("grid", "zip")
    @classmethod
    def _non_empty_lists(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [k for k, values in v.items() if not values]
        if empty:
            raise ValueError(f"{', '.join(empty)}: empty list; give at least one value")
        return v

    @field_validator("zip")
    @classmethod
    def _same_length(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if len({len(values) for values in v.values()}) > 1:
            lengths = ", ".join(f"{k}: {len(values)}" for k, values in v.items())
            raise ValueError(f"zipped lists must have the same length ({lengths})")
        return v


@dataclass(frozen=True)
class Trial:
    name: str
    values: dict[str, Any]  # the varied keys
    config: RunConfig | BaseModel  # a ufm.UFMConfig when the base has `kind: ufm`


def _flat_items(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested `{optim: {lr: 0.1}}` and dotted `{optim.lr: 0.1}` alike -> [("optim.lr", 0.1)]; a section
    given a plain value (`loss: ce`) stays as it is (it sets the section's name)."""
    items: list[tuple[str, Any]] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            items += _flat_items(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "-".join(map(_fmt, value))
    return str(value)


def _plain(value: Any) -> Any:
    """numpy scalars (Tune's samples) as Python numbers, for the config and the trial name."""
    return value.item() if isinstance(value, np.generic) else value


def _axes(sweep: Sweep) -> list[list[dict[str, Any]]]:
    """One list of value dicts per axis: each grid key, the zipped keys together, the random samples."""
    axes = [[{key: v} for v in values] for key, values in sweep.grid.items()]
    if sweep.zip:
        axes.append([dict(zip(sweep.zip, row, strict=True)) for row in zip(*sweep.zip.values(), strict=True)])
    if sweep.random:
        rng = np.random.default_rng(sweep.random.seed)
        domains = {key: d.domain() for key, d in sweep.random.keys.items()}
        axes.append(
            [
                {key: _plain(domain.sample(random_state=rng)) for key, domain in domains.items()}
                for _ in range(sweep.random.samples)
            ]
        )
    return axes


def _names(combos: list[dict[str, Any]]) -> list[str]:
    """`key=value,...` over the keys whose values differ between trials (`trial` if only one); a duplicate
    name (rounded random draws) gets `,n=<index>`."""
    differing = [k for k in combos[0] if len({repr(c[k]) for c in combos}) > 1]
    names = [",".join(f"{k}={_fmt(c[k])}" for k in differing) or "trial" for c in combos]
    if len(set(names)) < len(names):
        names = [name if names.count(name) == 1 else f"{name},n={i}" for i, name in enumerate(names)]
    return [name.replace("/", "_") for name in names]


MAX_TRIALS = 1000  # a sweep with more trials runs only with --yes
SHOW_FROM = 100  # a sweep with more trials says so before checking their configs


def load_sweep(
    path: str | Path, out: str | Path | None = None, yes: bool = True
) -> tuple[Sweep, list[Trial], Path]:
    """Read and validate a sweep file and every trial's config; (sweep, trials, sweep directory).

    Raises one ConfigError naming the file and the problem: an unknown key, an empty grid, an unknown preset,
    a trial whose config does not validate, more than MAX_TRIALS trials without `yes`."""
    path = Path(path)
    where = f"sweep file {path}"
    try:
        sweep = Sweep.model_validate(read_yaml(path, "sweep file"))
    except ValidationError as exc:
        raise ConfigError(f"{where}: {describe(exc, Sweep)}") from None
    count = math.prod(len(v) for v in sweep.grid.values()) * len(next(iter(sweep.zip.values()), [0]))
    count *= sweep.random.samples if sweep.random else 1
    if count > MAX_TRIALS and not yes:
        raise ConfigError(f"{where}: {count:,} trials (more than {MAX_TRIALS:,}); add --yes to run them all")
    if count > SHOW_FROM:
        print(f"{where}: {count:,} trials; checking their configs ...", flush=True)
    axes = _axes(sweep)
    if not axes:
        raise ConfigError(f"{where}: the grid is empty; give lists of values, e.g. grid: {{seed: [0, 1]}}")
    base = dict(sweep.base)
    preset, config_file = base.pop("preset", None), base.pop("config", None)
    model = _config_model(base.get("kind"), preset, sweep.ranks, where)
    if config_file is not None:
        config_file = path.parent / config_file
    fixed = _flat_items(base)
    varied = [k for axis in axes for k in axis[0]]
    reserved = [k for k, _ in fixed if k in ("name", "out")] + [k for k in varied if k in ("name", "out")]
    if reserved:
        raise ConfigError(f"{where}: {reserved[0]} is set by the sweep; give the sweep directory as out: DIR")
    combos = [dict(item for part in combo for item in part.items()) for combo in itertools.product(*axes)]
    sweep_dir = Path(out or sweep.out or Path("sweeps") / path.stem).absolute()
    trials = []
    for name, combo in zip(_names(combos), combos, strict=True):
        overrides = [*fixed, *_flat_items(combo), ("out", str(sweep_dir)), ("name", name)]
        try:
            cfg = resolve(config_file, overrides, preset=preset, model=model)
        except ConfigError as exc:
            raise ConfigError(f"{where}, trial {name}: {exc}") from None
        trials.append(Trial(name, combo, cfg))
    _check_report(sweep.report, trials, model, where)
    return sweep, trials, sweep_dir


def _config_model(kind: Any, preset: str | None, ranks: int, where: str) -> type[BaseModel]:
    """The trials' config class, of the run kind `base.kind` names (none: training; `ufm`: UFM simulations,
    one process each). Presets and torchrun ranks are for training only."""
    try:
        model = config_model(kind)
    except ConfigError as exc:
        raise ConfigError(f"{where}: base.{exc}") from None
    if model is not RunConfig and (preset or ranks > 1):
        what = "preset" if preset else "ranks > 1"
        raise ConfigError(
            f"{where}: a kind: {kind} sweep takes no {what} (presets and torchrun are for training)"
        )
    return model


def _check_report(spec: ReportSpec, trials: list[Trial], model: type[BaseModel], where: str) -> None:
    """The heat map's keys must be config keys that differ between the trials (short forms accepted)."""
    if spec.heatmap is None:
        return
    from nclab.report.groups import differing, settings

    varied = differing([settings(t.config) for t in trials])  # as the heat map will group the runs
    keys = tuple(canonical_key(k, model) for k in spec.heatmap)
    for key in keys:
        if key not in varied:
            raise ConfigError(
                f"{where}: report.heatmap: {key} does not vary between the trials; give two of: "
                + (", ".join(varied) or "none (one trial)")
            )
    spec.heatmap = keys


@dataclass(frozen=True)
class Failure:
    """A trial's final failure: its own error line, the exit code its command would have had, attempts."""

    message: str
    exit_code: int
    attempts: int


@dataclass
class SweepResult:
    sweep_dir: Path
    trials: list[Trial]
    skipped: list[str]  # finished before this invocation
    failed: dict[str, Failure]  # trial name -> its final failure, in trial order

    @property
    def runs(self) -> list[Run]:
        return [Run(self.sweep_dir / t.name) for t in self.trials if (self.sweep_dir / t.name).is_dir()]


def report(result: SweepResult, spec: ReportSpec | None = None, plots: bool = True) -> tuple[str, list[Path]]:
    """The compare table of the sweep's measured runs (compare.md and compare.csv in the sweep directory)
    and its figures in the sweep's figures/: curves.png and grid.png (one line per setting, seeds averaged)
    and, with `spec.heatmap = (x, y)`, heatmap.png (final metrics over x and y, a row per other setting)."""
    from nclab.report.plots import plot
    from nclab.report.tables import compare

    runs = [run for run in result.runs if run.metrics()]  # a trial that failed before its first measure
    if not runs:
        raise RunError(f"{result.sweep_dir} holds no measured runs yet; run the sweep first")
    table = compare(runs, "md")
    write_atomic(result.sweep_dir / "compare.md", table)
    write_atomic(result.sweep_dir / "compare.csv", compare(runs, "csv"))
    figures: list[Path] = []
    if plots:
        out = result.sweep_dir / "figures"
        spec = spec or ReportSpec()
        figures = [*plot(runs, "curves", out=out, metrics=spec.metrics), *plot(runs, "grid", out=out)]
        if spec.heatmap:
            x, y = spec.heatmap
            figures += plot(runs, "heatmap", out=out, x=x, y=y, metrics=spec.metrics, baseline=spec.baseline)
    return table, figures
