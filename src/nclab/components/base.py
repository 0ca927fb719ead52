"""`Section` (a config section: extra keys forbidden, finite floats) and the bases that each dataset's,
model's, loss's and optimizer's own options class extends: the keys every component of a kind takes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


SEED_RANGE = 2**32  # seeds are unsigned 32-bit (NumPy's legacy seeding takes [0, 2^32))


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
    test_per_class: int | None = Field(
        None, ge=1, description="balanced test subset of N images per class (measured epochs pass fewer)"
    )
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
