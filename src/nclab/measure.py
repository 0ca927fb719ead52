"""One measured epoch: a no-grad pass over the un-augmented train split and the test split, model in eval
mode; returns one metrics.jsonl record (every metric of SPEC.md) and the arrays a run dir keeps beside it.

Single-label splits stream through `metrics.stream.NCAccumulator` (float64 sums, so bf16/fp16 features are
safe); multi-hot (N, K) targets go to `metrics.multilabel`. Decision-score summaries, uniform accuracy,
compactness and distinctiveness come from the train split's kept features (`metrics.scores`). Models
without a linear classifier (`model.head` absent or `head.weight` None) get null for the W-dependent keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from nclab.distributed import merge_accumulator, sum_over_ranks
from nclab.losses import Loss
from nclab.metrics import NCAccumulator, stream_metrics
from nclab.metrics.hooks import FeatureTap
from nclab.metrics.multilabel import multilabel_metrics
from nclab.metrics.nc import class_arrays, hits, nc5
from nclab.metrics.scores import compactness_terms, stream_scores
from nclab.metrics.stream import layer_metrics, train_metrics
from nclab.models.head import linear_classifier

__all__ = ["Measurement", "accuracy", "measure"]

Batches = Iterable[tuple[Tensor, Tensor]]


@dataclass
class Measurement:
    """`record`: metric keys; `scores`: samples of positive/negative scores and the biases (violin plots);
    `features`: per-class subsamples of train/test features and labels, when asked for; `classes`: per-class
    vectors of the train split (`metrics.nc.class_arrays`: counts, nc1_class, nc3_cos; nc4_ncc), K long,
    NaN for empty classes (CPU tensors)."""

    record: dict[str, float | None]
    scores: dict[str, Tensor] = field(default_factory=dict)
    features: dict[str, Tensor] = field(default_factory=dict)
    classes: dict[str, Tensor] = field(default_factory=dict)


@torch.no_grad()
def accuracy(model: nn.Module, loss_fn: Loss, batches: Batches) -> float | None:
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


def _pass(
    model: nn.Module,
    loss_fn: Loss,
    batches: Batches,
    keep: list,
    acc: NCAccumulator | None,
    tap: FeatureTap | None = None,
    layer_accs: dict[str, NCAccumulator] | None = None,
) -> float:
    """Forward one split; features go to `acc` (single-label) or are kept as (h, y) pairs, tapped layer
    features to their `layer_accs`. Returns the mean loss, accumulated on the device in float64 (no host sync
    per batch). A loss that does not read the logits gives the accumulator its own predictions."""
    total, n = None, 0
    for x, y in batches:
        logits, h = model(x)
        logits = None if logits is None else logits.float()
        loss = loss_fn.per_sample(logits, h.float(), y).double().sum()
        total = loss if total is None else total + loss
        n += len(y)
        if acc is not None:
            acc.update(h, y, None if loss_fn.uses_logits else loss_fn.predict(logits, h.float()))
            for name, layer_acc in (layer_accs or {}).items():
                layer_acc.update(tap.features.pop(name), y)
        else:
            keep.append((h.detach(), y))
    for merged in [acc, *(layer_accs or {}).values()] if acc is not None else []:
        merge_accumulator(merged)  # under torchrun: the whole split's statistics from every rank's shard
    total, n = sum_over_ranks(total, n)
    return total / n


def _per_class(h: Tensor, y: Tensor, per_class: int | None) -> tuple[Tensor, Tensor]:
    """The first `per_class` samples of every class in split order (all with None), CPU."""
    if per_class is not None:
        order = torch.argsort(y, stable=True)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(len(y), device=y.device) - torch.searchsorted(y[order], y[order])
        keep = rank < per_class
        h, y = h[keep], y[keep]
    return h.float().cpu(), y.cpu()


def _cat(kept: list) -> tuple[Tensor, Tensor]:
    return torch.cat([k[0] for k in kept]), torch.cat([k[1] for k in kept])


def _score_keys(
    train: NCAccumulator, weight: Tensor | None, bias: Tensor | None, sign: int, samples: int
) -> tuple[dict[str, float | None], dict[str, Tensor]]:
    """Score/bias summaries, uniform accuracy and compactness of the train split (row chunks: any K)."""
    stats = train.stats()
    mu_g = stats.global_mean
    full_means = torch.zeros(train.num_classes, mu_g.shape[0], dtype=torch.float64, device=mu_g.device)
    full_means[stats.classes] = stats.means
    cos = torch.cat([compactness_terms(h, y, full_means, mu_g) for h, y, _ in train.kept])
    out: dict[str, float | None] = {"compactness": cos.mean().item()}
    if weight is None:
        return out | {"uniform_acc": None, "uniform_threshold": None, "bias_sign": None}, {}
    summary, arrays = stream_scores([(h, y) for h, y, _ in train.kept], weight, bias, sign, samples)
    out |= summary
    out["bias_sign"] = sign
    if bias is not None:
        arrays["bias"] = bias.detach().float().cpu()
    return out, arrays


def _ood_mean(model: nn.Module, batches: Batches) -> Tensor:
    """Mean penultimate feature (float64) of an out-of-distribution set; its labels are ignored."""
    total, n = None, 0
    for x, _ in batches:
        h = model(x)[1].detach().to(torch.float64).sum(0)
        total = h if total is None else total + h
        n += len(x)
    return total / n


@torch.no_grad()
def measure(
    model: nn.Module,
    loss_fn: Loss,
    train_batches: Batches | None,
    test_batches: Batches | None,
    num_classes: int,
    multilabel: bool = False,
    features_per_class: int | bool | None = False,
    score_samples: int = 2000,
    layers: Sequence[str] = (),
    ood_batches: Batches | None = None,
    strict: bool = False,
) -> Measurement:
    """train_loss, test_loss and every metric of the metric table for the model as it is now.

    Either split may be None (then its keys are absent). `features_per_class`: False keeps no features, an int
    keeps that many per class of each split, None keeps all. The loss adds its own keys per split
    (`loss_fn.metrics`, e.g. center losses' `center_acc` / `test_center_acc`); a loss that ignores the
    classifier (`loss_fn.uses_logits` False) gets null W metrics and accuracies of its own prediction rule.
    The measured loss is the mean per-sample loss whatever `loss.reduction` is. `layers`: named modules
    whose (pooled) outputs get the classifier-free metrics as `<layer>/<key>` (single-label only);
    `ood_batches`: an out-of-distribution set for `nc5`; `strict`: a class without samples is an error
    instead of being skipped and counted (`classes_empty`).
    """
    was_training = model.training
    model.eval()
    weight, bias, sign = (
        linear_classifier(getattr(model, "head", None)) if loss_fn.uses_logits else (None, None, 1)
    )
    kept: dict[str, list] = {"train": [], "test": []}
    out: dict[str, float | None] = {}
    scores: dict[str, Tensor] = {}
    classes: dict[str, Tensor] = {}
    train = test = None
    layers = [] if multilabel else list(layers)
    tap = FeatureTap(model, layers) if layers else None
    taps: dict[str, dict[str, NCAccumulator]] = {"train": {}, "test": {}}
    if multilabel:
        if train_batches is not None:
            out["train_loss"] = _pass(model, loss_fn, train_batches, kept["train"], None)
        if test_batches is not None:
            out["test_loss"] = _pass(model, loss_fn, test_batches, kept["test"], None)
        h, y = _cat(kept["train"]) if kept["train"] else (None, None)
        th, ty = _cat(kept["test"]) if kept["test"] else (None, None)
        if h is not None:
            out |= multilabel_metrics(h, y, weight, bias, th, ty)
        kept = {k: [(h[t.sum(1) == 1], t[t.sum(1) == 1].argmax(1)) for h, t in v] for k, v in kept.items()}
    else:
        if train_batches is not None:
            train = NCAccumulator(num_classes, weight, bias, keep_features=True, strict=strict)
            taps["train"] = {n: NCAccumulator(num_classes, keep_features=True, strict=strict) for n in layers}
            out["train_loss"] = _pass(model, loss_fn, train_batches, [], train, tap, taps["train"])
            kept["train"] = [(h, y) for h, y, _ in train.kept]
        if test_batches is not None:
            centres = train.stats().centres() if train is not None else None
            keep = features_per_class is not False or bool(loss_fn.extra_metrics)
            test = NCAccumulator(
                num_classes, weight, bias, ncc_means=centres, keep_features=keep, strict=strict
            )
            taps["test"] = {
                n: NCAccumulator(num_classes, ncc_means=taps["train"][n].stats().centres() if train else None)
                for n in layers
            }
            out["test_loss"] = _pass(model, loss_fn, test_batches, [], test, tap, taps["test"])
            kept["test"] = [(h, y) for h, y, _ in test.kept]
        if train is not None:
            record, nc4 = train_metrics(train)
            out |= record
            classes = class_arrays(train.stats(), weight) | nc4
            raw_bias = (
                None if bias is None else sign * bias
            )  # the stored parameter, as the BCE study plots it
            summary, scores = _score_keys(train, weight, raw_bias, sign, score_samples)
            out |= summary
            if ood_batches is not None:
                out["nc5"] = nc5(train.stats(), _ood_mean(model, ood_batches))
        out |= stream_metrics(None, test)
        for name in layers:
            out |= layer_metrics(taps["train"].get(name), taps["test"].get(name), name)
    if tap is not None:
        tap.close()
    if loss_fn.extra_metrics and not multilabel:
        for split, prefix in (("train", ""), ("test", "test_")):
            if kept[split]:
                out |= {prefix + k: v for k, v in loss_fn.metrics(*_cat(kept[split])).items()}
    features: dict[str, Tensor] = {}
    if features_per_class is not False:
        for split in ("train", "test"):
            if kept[split]:
                features[f"{split}_features"], features[f"{split}_labels"] = _per_class(
                    *_cat(kept[split]), features_per_class
                )
    model.train(was_training)
    return Measurement(out, scores, features, {k: v.float().cpu() for k, v in classes.items()})
