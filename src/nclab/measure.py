"""nclab's measured epoch: `metrics.epoch.measure_epoch` with what a run knows: the features are the model's
`(logits, h)`, W is `model.head.weight` (the additive bias `models.head.additive_bias` and its sign), the
run's loss gives train_loss/test_loss and its own keys, and under torchrun `distributed` supplies the
collectives. Training (train.py) and `nclab measure` (remeasure.py) both call `measure`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from nclab import distributed
from nclab.data import Splits
from nclab.data.text import TokenSplits
from nclab.losses import Loss
from nclab.metrics.epoch import Batches, Collectives, Head, Measurement, Settings, measure_epoch
from nclab.metrics.nc import hits
from nclab.models.head import linear_classifier

__all__ = ["Measurement", "Settings", "accuracy", "measure", "resolved_weighting", "settings"]


@torch.no_grad()
def accuracy(model: nn.Module, loss_fn: Loss, batches: Iterable[tuple[Tensor, Tensor]]) -> float | None:
    """Accuracy of the loss's prediction rule, model in eval mode, over `batches` (e.g. the validation
    split); None when the loss has no prediction rule for this model."""
    was_training = model.training
    model.eval()
    correct, n = 0, 0
    for x, y in batches:
        pred = loss_fn.predict(*model(x))
        if pred is None:
            correct = None
            break
        correct += hits(pred, y)
        n += len(y)
    model.train(was_training)
    return None if correct is None else int(correct) / n


def settings(
    measure_cfg: Any, num_classes: int, multilabel: bool, features: bool, splits: Splits | None = None
) -> Settings:
    """The measured epoch's settings from a run's `measure` section; `features`: save the per-class
    feature subsample (`measure.save_features_at`) this epoch. With the run's single-label `splits`, the
    class counts of the measured targets (min_count, top_k, class weighting); `measure.weighting=auto` is
    `class` for token data (a language model) and `sample` otherwise; `measure.frequency_bins=auto` is 12 bins
    for token data and none otherwise."""
    language, bins = isinstance(splits, TokenSplits), measure_cfg.frequency_bins
    counts = None
    if splits is not None and not multilabel:
        counts = tuple(
            torch.bincount(y.long(), minlength=num_classes) for y in (splits.train_y, splits.test_y)
        )
    return Settings(
        num_classes,
        multilabel=multilabel,
        layers=tuple(measure_cfg.layers),
        features_per_class=measure_cfg.features_per_class if features else False,
        score_samples=measure_cfg.score_samples,
        strict=measure_cfg.strict,
        weighting=resolved_weighting(measure_cfg.weighting, language),
        counts=counts,
        min_count=measure_cfg.min_count,
        top_k=measure_cfg.top_k,
        language=language,
        frequency_bins=(12 if language else 0) if bins == "auto" else bins,
    )


def resolved_weighting(weighting: str, language: bool) -> str:
    """`measure.weighting` with `auto` resolved: class for a language model (Wu & Papyan 2024), else
    sample."""
    return ("class" if language else "sample") if weighting == "auto" else weighting


def measure(
    model: nn.Module,
    loss_fn: Loss,
    train: Batches | None,
    test: Batches | None,
    settings: Settings,
    ood: Batches | None = None,
) -> Measurement:
    """train_loss, test_loss and every metric of the metric table for an nclab model as it is now.

    Either split may be None (its keys are absent). A loss that ignores the classifier (`uses_logits`
    False) gets null W keys and accuracies of its own prediction rule; without `model.head.weight` every
    W-dependent key is null. The measured loss is the mean per-sample loss whatever `loss.reduction` is.
    """
    head = Head(*linear_classifier(getattr(model, "head", None))) if loss_fn.uses_logits else Head()
    collectives = None
    if distributed.world() > 1:
        collectives = Collectives(distributed.all_reduce, distributed.gather_rows)
    return measure_epoch(
        model, train, test, settings, classifier=head, loss=loss_fn, ood=ood, collectives=collectives
    )
