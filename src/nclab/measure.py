"""One measured epoch: a no-grad pass over the un-augmented train split and the test split, model in eval
mode, feeding the streaming NC accumulators; returns one metrics.jsonl record's worth of keys."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from nclab.losses import Loss
from nclab.metrics import NCAccumulator, stream_metrics
from nclab.metrics.nc import ncc_predict


def hits(logits: Tensor, targets: Tensor) -> Tensor:
    """Correct argmax predictions in a batch (see `class_hits`)."""
    return class_hits(logits.argmax(1), targets)


def class_hits(pred: Tensor, targets: Tensor) -> Tensor:
    """Correct predictions in a batch: pred == label, or for N x K targets (multi-hot, mixed) the
    predicted class carries the target's largest weight."""
    if targets.dim() == 1:
        return (pred == targets).sum()
    return (targets.gather(1, pred[:, None]).squeeze(1) == targets.max(1).values).sum()


@torch.no_grad()
def accuracy(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> float:
    """Accuracy of the model in eval mode over `batches` (e.g. the validation split)."""
    was_training = model.training
    model.eval()
    correct, n = 0, 0
    for x, y in batches:
        correct += int(hits(model(x)[0], y))
        n += len(y)
    model.train(was_training)
    return correct / n


def _pass(
    model: nn.Module,
    loss_fn: Loss,
    batches: Iterable[tuple[Tensor, Tensor]],
    acc: NCAccumulator,
    centers: Tensor | None,
) -> tuple[float, float | None]:
    """Feed one split into `acc`; return the mean loss and the nearest-learned-center accuracy."""
    total, center_hits, n = 0.0, 0, 0
    for x, y in batches:
        logits, h = model(x)
        total += float(loss_fn.per_sample(logits, h, y).sum())
        n += len(y)
        acc.update(h, y)
        if centers is not None:
            center_hits += int((ncc_predict(h, centers) == y).sum())
    return total / n, None if centers is None else center_hits / n


@torch.no_grad()
def measure(
    model: nn.Module,
    loss_fn: Loss,
    train_batches: Iterable[tuple[Tensor, Tensor]],
    test_batches: Iterable[tuple[Tensor, Tensor]] | None,
    num_classes: int,
) -> dict[str, float | None]:
    """train_loss, test_loss and every NC metric of SPEC.md for the model as it is now; runs with learned
    centers add center_acc (nearest learned center, SPEC.md), which is the accuracy of runs whose loss
    ignores the classifier (standalone_center: W-dependent metrics are then null)."""
    was_training = model.training
    model.eval()
    weight, bias = (model.head.weight, model.head.bias) if loss_fn.uses_logits else (None, None)
    centers = loss_fn.centers.detach().double() if hasattr(loss_fn, "centers") else None
    train = NCAccumulator(num_classes, weight, bias, keep_features=True)
    out: dict[str, float | None] = {}
    out["train_loss"], center_acc = _pass(model, loss_fn, train_batches, train, centers)
    test, test_center_acc = None, None
    if test_batches is not None:
        test = NCAccumulator(num_classes, weight, bias, ncc_means=train.stats().means)
        out["test_loss"], test_center_acc = _pass(model, loss_fn, test_batches, test, centers)
    model.train(was_training)
    out |= stream_metrics(train, test)
    if centers is not None:
        out |= {"center_acc": center_acc, "test_center_acc": test_center_acc}
    if not loss_fn.uses_logits:
        out |= {"train_acc": center_acc, "test_acc": test_center_acc}
    return out
