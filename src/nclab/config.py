"""One validated run configuration: defaults < preset < YAML file < `key=value` overrides.

Dotted keys reach nested sections (`optim.lr=0.05`); a bare section name sets its `name`
(`model=resnet18` is `model.name=resnet18`); `epochs=N` is `train.epochs=N`. Values are parsed as
YAML scalars (`true`, `0.05`, `null`, `[1, 2]`). Validation happens once, here; every error is
reported as `key: problem` so the CLI can print it on one line.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from nclab.errors import ConfigError
from nclab.registry import Registry


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


SEED_RANGE = 2**32  # seeds are unsigned 32-bit (NumPy's legacy seeding takes [0, 2^32))
NAME_MAX = 255  # bytes of one path component on the common file systems


def _default_data_root() -> str:
    return os.environ.get("NCLAB_DATA") or str(Path.home() / ".cache" / "nclab" / "data")


class DataConfig(Section):
    """Options every dataset takes (variants, normalisation, loading); a dataset's own options extend this
    class beside its code (e.g. data/embedded.py's gaussian)."""

    name: str = "digits"
    root: str = Field(
        default_factory=_default_data_root,
        description="dataset directory; default $NCLAB_DATA or ~/.cache/nclab/data",
    )
    download: bool = Field(True, description="fetch missing torchvision datasets")
    seed: int | None = Field(
        None,
        ge=0,
        lt=SEED_RANGE,
        strict=True,
        description="seed of splits, subsets, random labels, composition; default: run seed",
    )
    test_fraction: float = Field(0.2, gt=0, lt=1, description="test share of datasets without a fixed split")
    normalize: Literal["dataset", "imagenet", "none"] = Field(
        "dataset", description="per-channel mean/std of the dataset, ImageNet's, or pixels in [0, 1]"
    )
    rgb32: bool = Field(
        False, description="MNIST-like sets: resize to 32x32 and repeat to 3 channels (2021 study)"
    )
    random_labels: bool = Field(
        False, description="seeded permutation of the train labels, stored in the run dir"
    )
    per_class: int | None = Field(None, ge=1, description="balanced train subset of N images per class")
    imbalance: Literal["none", "exp", "step"] = Field(
        "none",
        description="long-tailed train subset: n_k = n_max * ratio^(-k/(K-1)) (exp) or half at n_max/ratio",
    )
    imbalance_ratio: float = Field(100.0, ge=1, description="n_max / n_min of the imbalanced subset")
    val_fraction: float = Field(
        0.0, ge=0, lt=1, description="held-out share of train per class, measured as val_acc"
    )
    augment: Literal["none", "crop_flip", "crop_flip_rotate", "flip_rotate", "rotate"] = Field(
        "none",
        description="on-device train augmentation: pad 4 + random crop + flip, or flip, and/or a rotation",
    )
    rotation: float = Field(
        15.0,
        gt=0,
        le=180,
        description="*rotate: the largest angle in degrees (15: BCE study; 5: center loss)",
    )
    mix: Literal["none", "mixup", "cutmix", "both"] = Field(
        "none", description="timm Mixup/CutMix on train batches"
    )
    mixup_alpha: float = Field(0.8, gt=0)
    cutmix_alpha: float = Field(1.0, gt=0)
    mix_prob: float = Field(1.0, ge=0, le=1, description="probability of mixing a batch")
    mix_switch_prob: float = Field(
        0.5, ge=0, le=1, description="with mix=both: probability of CutMix over Mixup"
    )
    mix_smoothing: float = Field(0.0, ge=0, lt=1, description="label smoothing of the mixed targets")
    resident: Literal["auto", "device", "host"] = Field(
        "auto", description="keep the data on the device, or on the host with a DataLoader (auto: if it fits)"
    )
    workers: int = Field(4, ge=0, description="DataLoader workers when the data stays on the host")

    def data_seed(self, run_seed: int) -> int:
        return run_seed if self.seed is None else self.seed


class ModelConfig(Section):
    """Options every model takes: its name. Each model's own options (width, depth, stem, ...) extend this
    class beside its code (models/*.py); `nclab options model NAME` lists them with their defaults."""

    name: str = "mlp"


def positive_sizes(v: int | list[int] | None) -> int | list[int] | None:
    """A model size given as a number or a per-stage list: each >= 1, a list not empty."""
    if v is not None and (v == [] or min([v] if isinstance(v, int) else v) < 1):
        raise ValueError("must be >= 1 (or a non-empty list of such)")
    return v


BiasInit = Literal[
    "uniform", "zero", "constant", "normal", "index", "ramp", "ramp_reversed", "log", "log_reversed",
    "quarters", "quarters_reversed",
]  # fmt: skip
BCE_BIAS_MODES: tuple[str, ...] = (
    "uniform",
    "index",
    "ramp",
    "ramp_reversed",
    "log",
    "log_reversed",
    "quarters",
    "quarters_reversed",
)  # `--bias_init_mode` 0-7 of Li et al. 2025 (models/linear.py), in order


class HeadConfig(Section):
    """Classifier on the features: logits z = W h + b."""

    kind: Literal["linear", "none"] = Field(
        "linear", description="none: no classifier (feature losses such as standalone center loss)"
    )
    bias: bool = True
    bias_sign: Literal[1, -1] = Field(
        1, description="logits W h + sign * b; -1 is the BCE study's z = W h - b (the bias as a threshold)"
    )
    fixed: Literal["etf"] | None = Field(
        None, description="etf: W = sqrt(K/(K-1)) (I - 11^T/K) P^T, P random d x K orthonormal, never trained"
    )
    fixdim: bool = Field(False, description="features of dimension K (ResNets: last block emits K channels)")
    bias_init: BiasInit = Field(
        "uniform",
        description="uniform: nn.Linear's U(-1/sqrt(d), 1/sqrt(d)) + bias_mean; constant: bias_mean; "
        "normal: N(bias_mean, bias_std^2); the BCE study's modes 0-7 by number or name (uniform, index, "
        "ramp, ramp_reversed, log, log_reversed, quarters, quarters_reversed) + bias_mean",
    )
    bias_mean: float = 0.0
    bias_std: float = Field(1.0, ge=0)

    @field_validator("bias_init", mode="before")
    @classmethod
    def _bias_mode(cls, v: Any) -> Any:
        """The BCE study's `--bias_init_mode` numbers 0-7 name the patterns."""
        if isinstance(v, int) and not isinstance(v, bool):
            if v not in range(len(BCE_BIAS_MODES)):
                raise ValueError(f"bias init mode {v} is not one of 0-{len(BCE_BIAS_MODES) - 1}")
            return BCE_BIAS_MODES[v]
        return v


class LossConfig(Section):
    """Options every loss takes; a loss's own options extend this class beside its code (losses.py)."""

    name: str = "ce"
    reduction: Literal["mean", "sum"] = Field(
        "mean", description="over the batch; the 2022 paper's runs summed (with train.clip_grad_norm=2)"
    )
    feature_decay: float = Field(
        0.0, ge=0, description="lambda_H: adds lambda_H/2 ||h_i||^2 per sample on the raw features"
    )


class OptimConfig(Section):
    """Options every optimizer takes (lr, decays, schedule); an optimizer's own options (and its lr default)
    extend this class beside its code (optim.py)."""

    name: str = "sgd"
    lr: float = Field(0.05, gt=0, description="initial learning rate")
    scale_lr: bool = Field(False, description="multiply lr by train.batch_size / 128 (BCE study)")
    weight_decay: float = Field(5e-4, ge=0, description="every parameter group unless set below")
    weight_decay_backbone: float | None = Field(None, ge=0, description="default weight_decay")
    weight_decay_weight: float | None = Field(None, ge=0, description="classifier W; default weight_decay")
    weight_decay_bias: float | None = Field(None, ge=0, description="classifier b; default weight_decay")
    schedule: Literal["none", "step", "multistep", "cosine", "plateau"] = Field(
        "step", description="per-epoch lr schedule"
    )
    step_size: int = Field(40, ge=1, description="step: epochs between decays")
    gamma: float = Field(0.1, gt=0, description="step, multistep, plateau: decay factor")
    milestones: list[float] = Field(
        [3 / 7, 5 / 7], description="multistep: decay after these fractions of the epochs (Zhou et al. 2022)"
    )
    min_lr_factor: float = Field(0.0, ge=0, le=1, description="cosine: final lr as a fraction of the initial")
    warmup_epochs: int = Field(0, ge=0, description="linear warm-up before the schedule (not with plateau)")
    plateau_metric: Literal["step_loss", "step_acc", "train_loss", "train_acc", "test_loss", "test_acc"] = (
        Field("step_loss", description="plateau: the watched value (accuracies maximised, losses minimised)")
    )
    patience: int = Field(10, ge=0, description="plateau: epochs without improvement before a decay")
    threshold: float = Field(1e-4, ge=0, description="plateau: relative improvement that counts")

    @field_validator("milestones")
    @classmethod
    def _fractions(cls, v: list[float]) -> list[float]:
        if any(not 0 < f <= 1 for f in v) or v != sorted(v):
            raise ValueError("milestones are increasing fractions of the epochs in (0, 1], e.g. [0.5, 0.75]")
        return v

    def state_slots(self) -> int:
        """Tensors of each parameter's size the optimizer keeps (its share of a resume state, for
        `train.disk_plan`); an optimizer's options class says its own, default two (Adam's moments)."""
        return 2

    @model_validator(mode="after")
    def _compatible(self) -> OptimConfig:
        if self.warmup_epochs and self.schedule == "plateau":
            raise ValueError("warmup_epochs does not combine with schedule=plateau; use cosine or step")
        return self


class TrainConfig(Section):
    epochs: int = Field(200, ge=1)
    batch_size: int = Field(128, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    clip_grad_norm: float | None = Field(None, gt=0, description="max gradient norm (Zhou et al. 2022: 2.0)")
    save_every: int | None = Field(
        None, ge=1, description="checkpoint cadence; default every epoch up to 200, else 100 evenly spaced"
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32",
        description="autocast precision of forward and loss (fp16 adds a gradient scaler); metrics "
        "always accumulate in float64",
    )
    channels_last: bool = Field(False, description="channels-last memory for convnets (faster with bf16)")
    compile: Literal["false", "default", "max-autotune"] = Field(
        "false", description="torch.compile the model's forward; the first epoch includes the compile time"
    )

    @field_validator("compile", mode="before")
    @classmethod
    def _compile_bool(cls, value: Any) -> Any:
        """YAML reads `compile: false` / `true` as booleans: false -> "false", true -> "default"."""
        return {False: "false", True: "default"}.get(value, value) if isinstance(value, bool) else value

    cuda_graph: bool = Field(
        False,
        description="replay forward, loss, backward and optimizer step from one CUDA graph (CUDA; falls back "
        "to the eager step with a warning where it cannot capture, e.g. lbfgs or fp16)",
    )


class MeasureConfig(Section):
    every: int = Field(1, ge=1, description="measure NC every this many epochs (and at the last)")
    batch_size: int = Field(1024, ge=1)
    save_features_at: list[int] = Field(
        [],
        description="epochs whose penultimate features go to features/ (`nclab visualize`); also measured",
    )
    features_per_class: int | None = Field(
        200, ge=1, description="saved features per class and split (the first in split order); null = all"
    )
    score_samples: int = Field(
        2000,
        ge=1,
        description="positive and negative decision scores kept per measured epoch for violin plots",
    )
    layers: list[str] = Field(
        [],
        description="named modules (e.g. backbone.layer3) whose pooled outputs get the classifier-free NC "
        "metrics as <layer>/<key> (NC across depth); names as torch's model.named_modules() gives them",
    )
    ood: str | None = Field(
        None,
        description="a second dataset's test split measured as out-of-distribution: nc5 (Ammar et al. 2024)",
    )
    strict: bool = Field(
        False,
        description="a class without samples is an error (default: skipped and counted as classes_empty)",
    )

    @field_validator("ood")
    @classmethod
    def _ood_dataset(cls, v: str | None) -> str | None:
        if v is not None and v not in registry("data"):
            raise ValueError(f"{v!r} is not one of: {', '.join(registry('data').names())}")
        return v


# sections that name a registered component, whose own options class validates the section
COMPONENTS = {
    "data": ("nclab.data", "DATASETS"),
    "model": ("nclab.models", "MODELS"),
    "loss": ("nclab.losses", "LOSSES"),
    "optim": ("nclab.optim", "OPTIMIZERS"),
}
# keys that moved, with where they went (one release of a clear error)
MOVED = {
    "data.gaussian": "the gaussian dataset's own options: data.classes, data.train_per_class, "
    "data.test_per_class, data.dim, data.separation",
    "data.multilabel": "the composed datasets' own options: data.single, data.pair, data.test_single, "
    "data.test_pair",
}


LIFTED = {"gaussian": {"per_class": "train_per_class"}, "multilabel": {}}  # data.<sub>.<key> -> data.<key>


def stored_tree(tree: dict[str, Any]) -> dict[str, Any]:
    """A run directory's config tree as this version reads it. Runs written before components owned their
    options hold every component's options in one shared section (and the data.gaussian / data.multilabel
    sub-sections): the keys of the chosen component are kept (the sub-sections lifted into `data`), the
    others, which that run never used, dropped (a `kind: ufm` tree has one component section, its loss).
    A current tree comes back unchanged."""
    tree = dict(tree)
    for section in ["loss"] if tree.get("kind") == "ufm" else COMPONENTS:
        value, reg = tree.get(section), registry(section)
        name = value.get("name", reg.base.model_fields["name"].default) if isinstance(value, dict) else None
        if not isinstance(name, str) or name not in reg:
            continue
        value = dict(value)
        for sub, renames in LIFTED.items() if section == "data" else ():
            for key, v in (value.pop(sub, None) or {}).items():
                value.setdefault(renames.get(key, key), v)
        fields = reg.options(name).model_fields
        tree[section] = {
            k: v for k, v in value.items() if k in fields and (v is not None or _admits_none(fields[k]))
        }
    return tree


def _admits_none(field: FieldInfo) -> bool:
    """Whether a field takes null; older run dirs wrote null for "the model's own default" where the model's
    options class now holds that default."""
    return field.annotation is None or type(None) in get_args(field.annotation)


def registry(section: str) -> Registry:
    """The registry of a component section, imported lazily (registries import this module)."""
    module, name = COMPONENTS[section]
    return getattr(importlib.import_module(module), name)


def component_section(section: str, value: Any) -> Section:
    """A data/model/loss/optim section validated against the options class of the component it names (its
    `name`, default the section base's), or one ConfigError line naming what that component takes."""
    reg = registry(section)
    if isinstance(value, BaseModel):
        if type(value) is reg.options(getattr(value, "name", "")):
            return value
        value = value.model_dump()
    if not isinstance(value, dict):
        raise ConfigError(f"{section}: expected a section of keys, got {_clip(repr(value))}")
    name = value.get("name", reg.base.model_fields["name"].default)
    if not isinstance(name, str) or name not in reg:
        raise ConfigError(f"{section}.name: {name!r} is not one of: {', '.join(reg.names())}")
    options = reg.options(name)
    try:
        return options.model_validate(value)
    except ValidationError as exc:
        problems = [_describe(e, options, [section], reg) for e in exc.errors()]
        raise ConfigError("; ".join(problems)) from None


def component_validator(*fields: str) -> Any:
    """The before-validator of component sections `fields` (each validated by `component_section`), for
    RunConfig and other top-level configs that hold one (ufm.UFMConfig's loss)."""
    return field_validator(*fields, mode="before")(
        lambda value, info: component_section(info.field_name, value)
    )


class RunConfig(Section):
    seed: int = Field(0, ge=0, lt=SEED_RANGE, strict=True, description="an integer in [0, 2^32)")
    name: str | None = Field(
        None,
        description="run directory name (one path component); default <data>-<model>-<loss>-s<seed>-<time>",
    )
    out: str = "runs"
    data: SerializeAsAny[DataConfig] = Field(DataConfig(), validate_default=True)
    model: SerializeAsAny[ModelConfig] = Field(ModelConfig(), validate_default=True)
    head: HeadConfig = HeadConfig()
    loss: SerializeAsAny[LossConfig] = Field(LossConfig(), validate_default=True)
    optim: SerializeAsAny[OptimConfig] = Field(OptimConfig(), validate_default=True)
    train: TrainConfig = TrainConfig()
    measure: MeasureConfig = MeasureConfig()

    _component = component_validator(*COMPONENTS)

    @field_validator("name")
    @classmethod
    def _one_component(cls, v: str | None) -> str | None:
        if v is not None and (v in ("", ".", "..") or "/" in v or "\0" in v or v.startswith(".")):
            raise ValueError("a run name is one directory name: no '/', not empty, not starting with '.'")
        if v is not None and len(v.encode()) > NAME_MAX:
            raise ValueError(f"a run name has at most {NAME_MAX} bytes (a file system limit)")
        return v

    @model_validator(mode="after")
    def _feature_epochs(self) -> RunConfig:
        outside = [e for e in self.measure.save_features_at if not 1 <= e <= self.train.epochs]
        if outside:
            raise ValueError(
                f"measure.save_features_at: epochs {outside} are outside 1..train.epochs={self.train.epochs}"
            )
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(), sort_keys=False)


M = TypeVar("M", bound=BaseModel)
ALIASES = {"epochs": "train.epochs"}  # RunConfig's short keys


def sections(model: type[BaseModel]) -> list[str]:
    """The keys of `model` that hold a nested Section (`loss`, `optim`, ...)."""
    return [
        k
        for k, f in model.model_fields.items()
        if isinstance(f.annotation, type) and issubclass(f.annotation, Section)
    ]


def canonical_key(key: str, model: type[BaseModel] = RunConfig) -> str:
    """The dotted key a short one stands for: `epochs` -> `train.epochs`, a section `loss` -> `loss.name`."""
    key = ALIASES.get(key, key) if model is RunConfig else key
    return f"{key}.name" if key in sections(model) else key


def _set_dotted(tree: dict[str, Any], key: str, value: Any, model: type[BaseModel] = RunConfig) -> None:
    parts = (key if isinstance(value, dict) else canonical_key(key, model)).split(".")  # dict: a section
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(f"{text!r}: overrides are written key=value (e.g. optim.lr=0.05)")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (line {key_node.start_mark.line + 1})", None
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    return data


def preset_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files("nclab.presets").iterdir()
        if p.name.endswith(".yaml")
    )


def _preset_file(name: str) -> dict[str, Any]:
    if name not in preset_names():
        raise ConfigError(
            f"preset {name!r} is unknown; `nclab presets` lists them (e.g. zhu2021-cifar10-sgd)"
        )
    return yaml.safe_load(resources.files("nclab.presets").joinpath(f"{name}.yaml").read_text()) or {}


def read_preset(name: str) -> dict[str, Any]:
    """The config sections of a preset (its `about` block removed)."""
    tree = _preset_file(name)
    tree.pop("about", None)
    return tree


def preset_about(name: str) -> dict[str, str]:
    """A preset's `about` block: description, source (paper, table or figure), series (overrides to vary)."""
    return _preset_file(name).get("about") or {}


def _owners(reg: Registry, key: str) -> list[str]:
    return [n for n in reg.names() if key in reg.options(n).model_fields]


def _describe(
    error: dict[str, Any], model: type[BaseModel], prefix: list[str] = (), reg: Registry | None = None
) -> str:
    """`key: problem` for one pydantic error; in a component section (`reg`) an unknown key names the
    options the chosen component takes, the components that take the key, or where a moved key went."""
    loc = [*prefix, *(str(p) for p in error["loc"])]
    key = ".".join(loc)
    if error["type"] == "extra_forbidden":
        section: type[BaseModel] = model
        for part in loc[len(prefix) : -1]:
            section = section.model_fields[part].annotation
        if key in MOVED:
            return f"{key}: moved to {MOVED[key]}"
        if reg is None:
            return f"{key}: unknown key; allowed: {', '.join(section.model_fields)}"
        name = model.model_fields["name"].default
        owners = _owners(reg, loc[-1])
        hint = f"; {loc[-1]} is an option of {', '.join(owners)}" if owners else ""
        allowed = ", ".join(model.model_fields)
        listing = f"nclab options {prefix[0]} {name}"
        return f"{key}: unknown key; allowed: {allowed} ({prefix[0]}={name}'s options{hint}; {listing})"
    msg = _clip(error["msg"].removeprefix("Value error, "))
    if error["type"] == "model_type" or error["type"] == "dict_type":
        return f"{key}: expected a section of keys, got {_clip(repr(error['input']))}"
    if error["loc"] == ():  # a check across sections: its message names the keys
        return msg
    return f"{key}: {msg} (got {_clip(repr(error['input']))})"


def _clip(text: str, limit: int = 100) -> str:
    """A value shown in an error line, cut to `limit` characters (a pasted blob must not fill the screen)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def describe(exc: ValidationError, model: type[BaseModel]) -> str:
    """A pydantic validation error of `model` as one line: `key: problem; key: problem`."""
    return "; ".join(_describe(e, model) for e in exc.errors())


def config_model(kind: Any) -> type[BaseModel]:
    """The top-level config of a tree's `kind` key: ufm.UFMConfig for `kind: ufm` (the `nclab ufm`
    simulator's), RunConfig otherwise."""
    if kind == "ufm":
        from nclab.ufm import UFMConfig

        return UFMConfig
    return RunConfig


def validate_any(tree: dict[str, Any]) -> BaseModel:
    """A RunConfig, or the config of the command named by the tree's `kind` key (`kind: ufm`: UFMConfig)."""
    return validate(tree, config_model(tree.get("kind") if isinstance(tree, dict) else None))


def validate(tree: dict[str, Any], model: type[M] = RunConfig) -> M:
    """`model` (RunConfig, or another top-level config such as ufm.UFMConfig) from a key tree."""
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(describe(exc, model)) from None


def resolve(
    file: str | Path | None = None,
    overrides: Sequence[str | tuple[str, Any]] = (),
    preset: str | None = None,
    model: type[M] = RunConfig,
) -> M:
    """Defaults, then a preset, then a YAML file, then overrides (`key=value` text or (key, value) pairs),
    validated once as `model` (RunConfig, or another top-level config such as ufm.UFMConfig)."""
    tree: dict[str, Any] = {}
    if preset:
        tree = _merge(tree, read_preset(preset))
    if file:
        tree = _merge(tree, read_yaml(file))
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        _set_dotted(tree, key, value, model)
    return validate(tree, model)
