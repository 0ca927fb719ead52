"""One measured epoch: a no-grad pass over the un-augmented train split and the test split, model in eval
mode, feeding the streaming NC accumulators; returns one metrics.jsonl record's worth of keys."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from nclab.metrics import NCAccumulator, stream_metrics


def hits(logits: Tensor, targets: Tensor) -> Tensor:
    """Correct predictions in a batch: argmax == label, or for N x K targets (multi-hot, mixed) the
    predicted class carries the target's largest weight."""
    pred = logits.argmax(1)
    if targets.dim() == 1:
        return (pred == targets).sum()
    return (targets.gather(1, pred[:, None]).squeeze(1) == targets.max(1).values).sum()


@torch.no_grad()
def accuracy(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]]) -> float | None:
    """Accuracy of the model in eval mode over `batches` (e.g. the validation split); None without a head."""
    if model.head is None:
        return None
    was_training = model.training
    model.eval()
    correct, n = 0, 0
    for x, y in batches:
        correct += int(hits(model(x)[0], y))
        n += len(y)
    model.train(was_training)
    return correct / n


def _pass(
    model: nn.Module, loss_fn: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], acc: NCAccumulator
) -> float:
    """Feed one split into `acc`; return the mean loss."""
    total, n = 0.0, 0
    for x, y in batches:
        logits, h = model(x)  # logits None without a head
        total += float(loss_fn(logits, h, y)) * len(y)
        n += len(y)
        acc.update(h, y)
    return total / n


@torch.no_grad()
def measure(
    model: nn.Module,
    loss_fn: nn.Module,
    train_batches: Iterable[tuple[Tensor, Tensor]],
    test_batches: Iterable[tuple[Tensor, Tensor]] | None,
    num_classes: int,
) -> dict[str, float | None]:
    """train_loss, test_loss and every NC metric of SPEC.md for the model as it is now (the W-dependent ones
    None when the model has no head)."""
    was_training = model.training
    model.eval()
    weight, bias = (None, None) if model.head is None else (model.head.weight, model.head.bias)
    train = NCAccumulator(num_classes, weight, bias, keep_features=True)
    out: dict[str, float | None] = {"train_loss": _pass(model, loss_fn, train_batches, train)}
    test = None
    if test_batches is not None:
        test = NCAccumulator(num_classes, weight, bias, ncc_means=train.stats().means)
        out["test_loss"] = _pass(model, loss_fn, test_batches, test)
    model.train(was_training)
    return out | stream_metrics(train, test)
