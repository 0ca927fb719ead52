"""What a run is built from, for training, resuming and `nclab measure` alike: data (with a run's stored
random labels), model and loss on the configured device, and the loaders. Below `train` and `remeasure`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from nclab import distributed
from nclab.config import DataConfig, RunConfig, component_section
from nclab.data import Splits, load_dataset
from nclab.data.loader import DeviceLoader, eval_loader, loaders
from nclab.data.multilabel import require_single_label_classes
from nclab.data.text import TokenSplits
from nclab.errors import ConfigError, NclabError
from nclab.losses import Loss, build_loss, losses_where
from nclab.models import Classifier, build_model
from nclab.threads import choose_threads

__all__ = ["Parts", "build_parts", "resolve_device"]


def resolve_device(name: str, key: str = "train.device") -> torch.device:
    """`name` (auto | cpu | cuda) as a device; `key` is the setting named in the error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise NclabError(f"{key}=cuda but no CUDA device is visible; use {key}=cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@dataclass
class Parts:
    splits: Splits
    model: Classifier
    loss_fn: Loss
    train_batches: DeviceLoader  # shuffled, augmented
    measure_train: DeviceLoader  # un-augmented, eval batch size
    measure_test: DeviceLoader
    val: DeviceLoader | None
    ood: DeviceLoader | None = None  # measure.ood: another dataset's test split, preprocessed as this one


def build_parts(cfg: RunConfig, labels: torch.Tensor | None = None) -> Parts:
    """Data (with a run's stored random train `labels` when given), model and loss on the configured device,
    and the loaders; one ConfigError line for a loss that does not fit the model or the data."""
    device = distributed.setup(resolve_device(cfg.train.device))
    splits = load_dataset(cfg.data, cfg.seed, labels)
    if splits.multilabel:
        require_single_label_classes(splits, cfg.data.name)
    k = splits.num_classes
    model = build_model(cfg, splits.input_shape, k).to(device)
    if isinstance(splits, TokenSplits) and not getattr(model.backbone, "takes_tokens", False):
        raise ConfigError(
            f"data={cfg.data.name} gives token windows; model={cfg.model.name} takes none: use model=gpt"
        )
    if device.type == "cpu":  # train.threads: the count for this step's work (threads.py)
        tokens = getattr(model.backbone, "takes_tokens", False)
        torch.set_num_threads(
            choose_threads(cfg.train.threads, model, splits.input_shape, cfg.train.batch_size, tokens)
        )
    loss_fn = build_loss(cfg.loss, k, model.feature_dim).to(device)
    if model.head is None and loss_fn.uses_logits:
        raise ConfigError(
            f"head.kind=none leaves no logits for loss={cfg.loss.name}; use a loss on the features "
            f"({_choices(lambda loss: not loss.uses_logits)}) or head.kind=linear"
        )
    if splits.multilabel and not loss_fn.multilabel:
        raise ConfigError(
            f"loss={cfg.loss.name} takes one label per sample but data={cfg.data.name} is multi-label; "
            f"use {_choices(lambda loss: loss.multilabel)}"
        )
    train, data = cfg.train, cfg.data
    batches = loaders(
        splits, train.batch_size, cfg.measure.batch_size, device, cfg.seed, data, train.channels_last
    )
    val = None
    if splits.val_x is not None:
        val = eval_loader(splits.val_x, splits.val_y, splits, cfg.measure.batch_size, batches[2])
    return Parts(splits, model, loss_fn, *batches, val, ood_loader(cfg, splits, batches[2]))


def _choices(test: Callable[[Loss], bool]) -> str:
    return " or ".join(f"loss={name}" for name in losses_where(test))


def ood_loader(cfg: RunConfig, splits: Splits, like: DeviceLoader) -> DeviceLoader | None:
    """The `measure.ood` dataset's test split with this run's normalisation (None when not set)."""
    if cfg.measure.ood is None:
        return None
    common = cfg.data.model_dump(include=set(DataConfig.model_fields), exclude_none=True)  # shared keys only
    ood = load_dataset(component_section("data", common | {"name": cfg.measure.ood}), cfg.seed)
    if ood.input_shape != splits.input_shape:
        raise ConfigError(
            f"measure.ood={cfg.measure.ood} has inputs {ood.input_shape}, the model takes "
            f"{splits.input_shape}; "
            "choose a dataset of the same shape (or data.rgb32=true for MNIST-like sets)"
        )
    return eval_loader(ood.test_x, ood.test_y, splits, cfg.measure.batch_size, like)
