"""The run config: `RunConfig` with the sections that name no component (head, train, measure) and the
component sections validated against the chosen component's own options (config.sections)."""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import Field, SerializeAsAny, field_validator, model_validator

from nclab.components.base import (
    SEED_RANGE,
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    Section,
)
from nclab.components.data import DATASETS
from nclab.config.kinds import RunKind, register_kind
from nclab.config.sections import COMPONENTS, component_validator
from nclab.files import check_name

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

    threads: int | Literal["auto"] = Field(
        "auto",
        description="CPU threads (torch.set_num_threads); auto: one per 4e9 FLOPs of a step, at most the "
        "cores (nclab/threads.py)",
    )

    @field_validator("threads")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("give auto or a number of threads >= 1")
        return value

    figures: bool = Field(
        True,
        description="draw the end-of-run figures (figures/nc.png, TensorBoard's); false: none, for many "
        "short runs, where drawing is most of a tiny CPU run (`nclab plot RUN` draws them later)",
    )
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
    weighting: Literal["auto", "sample", "class"] = Field(
        "auto",
        description="class: mu_G = mean of class means, Sigma_W = mean of class covariances (Wu & Papyan "
        "2024); sample: SPEC.md; auto: class for data=text, sample otherwise",
    )
    min_count: int = Field(
        1, ge=1, description="measure only the classes with at least this many train samples"
    )
    top_k: int | None = Field(
        None, ge=2, description="measure only the k most frequent train classes (tokens)"
    )
    frequency_bins: int | Literal["auto"] = Field(
        "auto",
        description="log-spaced frequency-rank bins whose means of the classes/ vectors go to metrics.jsonl "
        "(<vector>_bin<i>, rank_bin<i>); auto: 12 for data=text, 0 (none) otherwise",
    )

    @field_validator("frequency_bins")
    @classmethod
    def _bins(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("give auto, 0 (none) or a number of bins >= 1")
        return value

    @field_validator("ood")
    @classmethod
    def _ood_dataset(cls, v: str | None) -> str | None:
        if v is not None and v not in DATASETS:
            raise ValueError(f"{v!r} is not one of: {', '.join(DATASETS.names())}")
        return v


def plugins_field() -> Any:
    """The `plugins` key of a top-level config: `resolve` records the plugins loaded when the run was made,
    and every command that reads the run's config.yaml imports them again."""
    return Field(
        [],
        description="modules or .py files that register components (--plugin, $NCLAB_PLUGINS), imported "
        "again wherever this config is read",
    )


class RunConfig(Section):
    seed: int = Field(0, ge=0, lt=SEED_RANGE, strict=True, description="an integer in [0, 2^32)")
    name: str | None = Field(
        None,
        description="run directory name (one path component); default <data>-<model>-<loss>-s<seed>-<time>",
    )
    out: str = "runs"
    plugins: list[str] = plugins_field()
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
        return v if v is None else check_name(v)

    @model_validator(mode="after")
    def _feature_epochs(self) -> RunConfig:
        outside = [e for e in self.measure.save_features_at if not 1 <= e <= self.train.epochs]
        if outside:
            shown = f"{outside}" if len(outside) <= 5 else f"[{str(outside[:5])[1:-1]}, ...] ({len(outside)})"
            raise ValueError(
                f"measure.save_features_at: epochs {shown} are outside 1..train.epochs={self.train.epochs}; "
                "give epochs of this run"
            )
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(), sort_keys=False)


register_kind(
    "train",
    RunKind(
        RunConfig,
        total=lambda cfg: cfg.train.epochs,
        stem=lambda cfg: f"{cfg.data.name}-{cfg.model.name}-{cfg.loss.name}-s{cfg.seed}",
        run="nclab.train:train",
        resumable=True,
        measurable=True,
    ),
)
