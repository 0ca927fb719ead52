"""One measured epoch: `measure_epoch`, the single path behind training's measured epochs, `nclab measure`
(metrics.jsonl and measure.jsonl) and `measure_model` (anyone's model).

Data path: the model in eval mode, no grad; per split (train, then test with the train centres, then an
optional out-of-distribution set) every batch goes through a feature source (`metrics.hooks`: the model's
`(logits, h)` or a hook) into one `NCAccumulator` for h and one per tapped layer, the per-sample loss (summed
on the device in float64), and the table's metrics with per-epoch state (`EpochMetric`); the record is then
assembled from the accumulators (`metrics.stream`). Multi-hot targets keep their features for
`metrics.multilabel`. Nothing else differs between the callers: they choose the source, the classifier
(W, b, sign), the loss (None: no loss keys) and, under torchrun, the collectives.

The arrays beside the record are of the kinds `ARRAYS` (`runs.Run.save_measured` writes them):
`scores` (strided samples of decision scores, the stored bias), `features` (per-class subsamples of both
splits), `classes` (per-class vectors of the train split).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, NamedTuple, Protocol

import torch
from torch import Tensor, nn

from nclab.metrics.hooks import FeatureSource, FeatureTap, ModelOutput
from nclab.metrics.lm import Dispersion, frequency_summaries, lm_spreads
from nclab.metrics.multilabel import multilabel_metrics
from nclab.metrics.nc import ClassStats, class_arrays, nc5
from nclab.metrics.scores import compactness_terms, stream_scores
from nclab.metrics.stream import NCAccumulator, layer_metrics, stream_metrics, train_metrics
from nclab.metrics.table import stateful

__all__ = [
    "ARRAYS",
    "Batches",
    "Collectives",
    "EpochMetric",
    "Head",
    "Measurement",
    "Settings",
    "measure_epoch",
]

ARRAYS = ("scores", "features", "classes")  # the kinds of arrays a measured epoch saves, in writing order

Batches = Iterable[Sequence[Tensor]]  # (x, y, ...) batches; y class indices (N,) or multi-hot rows (N, K)


class Head(NamedTuple):
    """W and b of the logits z = W h + b (b additive), and the sign s of the stored bias parameter (s b)."""

    weight: Tensor | None = None
    bias: Tensor | None = None
    sign: int = 1


NO_HEAD = Head()


class Collectives(NamedTuple):
    """What a multi-process measurement needs (distributed.py supplies them): `all_reduce(t)` sums t over
    the processes in place, `gather_rows(t)` returns every process's rows in rank order."""

    all_reduce: Callable[[Tensor], None]
    gather_rows: Callable[[Tensor], list[Tensor]]


class LossLike(Protocol):
    """What a measured epoch asks of a loss (`losses.Loss`)."""

    uses_logits: bool
    extra_metrics: tuple[str, ...]

    def per_sample(self, logits: Tensor | None, features: Tensor, targets: Tensor) -> Tensor: ...
    def predict(self, logits: Tensor | None, features: Tensor) -> Tensor | None: ...
    def metrics(self, features: Tensor, labels: Tensor) -> dict[str, float]: ...


class EpochMetric:
    """A metric with per-epoch state, declared in the metric table with `state=` (one instance per split
    and measured epoch). `update` sees every batch, `result` returns its keys for the split (the test split's
    are prefixed `test_`). Under torchrun `merge` sums every tensor attribute over the processes: keep the
    state as sums in tensors, or override `merge`."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    def update(self, features: Tensor, labels: Tensor, logits: Tensor | None) -> None:
        raise NotImplementedError

    def merge(self, all_reduce: Callable[[Tensor], None]) -> None:
        for value in vars(self).values():
            if isinstance(value, Tensor):
                all_reduce(value)

    def result(self, stats: ClassStats) -> dict[str, float | None]:
        raise NotImplementedError


@dataclass(frozen=True)
class Settings:
    """What to measure besides the record's fixed keys. `features_per_class`: False saves no features, an
    int that many per class of each split (first in split order), None all; `layers`: named modules whose
    pooled outputs get the classifier-free keys as `<layer>/<key>` (single-label only); `strict`: a class
    without samples is an error instead of being skipped and counted (`classes_empty`).

    Vocabulary scale (language models, SPEC.md): `counts` = the (train, test) class counts of the measured
    targets, known before the pass; with them `min_count` / `top_k` keep the train classes with at least
    that many samples / the most frequent (the rest dropped and counted: `classes_dropped`,
    `samples_dropped`), and `weighting="class"` weighs every class the same (mu_G = mean of the class means,
    Sigma_W = mean of the class covariances). `language` adds Linguistic Collapse's spreads and dispersion;
    `frequency_bins` > 0 the classes/ vectors' means over that many log-spaced frequency-rank bins."""

    num_classes: int
    multilabel: bool = False
    layers: Sequence[str] = ()
    features_per_class: int | Literal[False] | None = False
    score_samples: int = 2000
    strict: bool = False
    weighting: Literal["sample", "class"] = "sample"
    counts: tuple[Tensor, Tensor] | None = None
    min_count: int = 1
    top_k: int | None = None
    language: bool = False
    frequency_bins: int = 0

    def kept_classes(self) -> Tensor | None:
        """bool (K,) of the measured classes under min_count / top_k (None: no filter)."""
        if self.counts is None or (self.min_count <= 1 and self.top_k is None):
            return None
        train = self.counts[0]
        keep = train >= self.min_count
        if self.top_k is not None:
            top = torch.zeros_like(keep)
            top[torch.argsort(train, descending=True, stable=True)[: self.top_k]] = True
            keep &= top
        return keep

    def class_weights(self, split: int, keep: Tensor | None) -> Tensor | None:
        """1 / n_k of split 0 (train) or 1 (test) for class weighting (classes outside `keep` get 0)."""
        if self.weighting == "sample":
            return None
        if self.counts is None:
            raise ValueError(
                "weighting=class needs the class counts of the measured splits (Settings.counts)"
            )
        counts = self.counts[split].to(torch.float64)
        weights = torch.where(counts > 0, 1 / counts.clamp(min=1), torch.zeros_like(counts))
        return weights if keep is None else weights * keep


@dataclass
class Measurement:
    """`record`: metric keys; `arrays`: kind (one of `ARRAYS`) -> named CPU tensors (kinds without arrays
    absent)."""

    record: dict[str, float | None]
    arrays: dict[str, dict[str, Tensor]] = field(default_factory=dict)

    @property
    def scores(self) -> dict[str, Tensor]:
        return self.arrays.get("scores", {})

    @property
    def features(self) -> dict[str, Tensor]:
        return self.arrays.get("features", {})

    @property
    def classes(self) -> dict[str, Tensor]:
        return self.arrays.get("classes", {})


@dataclass
class _Split:
    """What one split's pass collects: `acc` for h (None: multi-hot targets, whose (h, y) go to `kept`),
    one accumulator per tapped layer, the table's stateful metrics, the mean loss."""

    acc: NCAccumulator | None
    layers: dict[str, NCAccumulator] = field(default_factory=dict)
    metrics: list[EpochMetric] = field(default_factory=list)
    kept: list[tuple[Tensor, Tensor]] = field(default_factory=list)
    loss: float | None = None
    dispersion: Dispersion | None = None

    def features(self) -> tuple[Tensor, Tensor] | None:
        kept = self.kept if self.acc is None else [(h, y) for h, y, _ in self.acc.kept]
        return (torch.cat([k[0] for k in kept]), torch.cat([k[1] for k in kept])) if kept else None


def _epoch_metrics(num_classes: int) -> list[EpochMetric]:
    """One instance of every stateful metric of the table ("module:Class" entries imported here)."""
    out = []
    for entry in stateful():
        cls = entry.state
        if isinstance(cls, str):
            module, _, name = cls.partition(":")
            cls = getattr(importlib.import_module(module), name)
        out.append(cls(num_classes))
    return out


def _pass(
    model: nn.Module,
    source: FeatureSource,
    tap: FeatureTap | None,
    batches: Batches,
    split: _Split,
    loss: LossLike | None,
    collectives: Collectives | None,
) -> None:
    """Forward one split into `split`; under torchrun every rank's part is merged into the whole split's."""
    total, n = None, 0
    for batch in batches:
        x, y = batch[0], batch[1]
        logits, h = source(model, x)
        logits = None if logits is None else logits.float()
        if loss is not None:
            value = loss.per_sample(logits, h.float(), y).double().sum()
            total = value if total is None else total + value  # on the device: no host sync per batch
        n += len(y)
        if split.acc is None:
            split.kept.append((h.detach(), y))
            continue
        split.acc.update(h, y, None if loss is None or loss.uses_logits else loss.predict(logits, h.float()))
        for name, acc in split.layers.items():
            acc.update(tap.features.pop(name), y)
        for metric in split.metrics:
            metric.update(h, y, logits)
        if split.dispersion is not None:
            split.dispersion.update(h)
    if collectives is not None:
        for acc in [split.acc, *split.layers.values()] if split.acc is not None else []:
            acc.merge(collectives.all_reduce, collectives.gather_rows)
        for metric in split.metrics:
            metric.merge(collectives.all_reduce)
        if total is not None:
            sums = torch.stack([total, torch.tensor(n, dtype=torch.float64, device=total.device)])
            collectives.all_reduce(sums)
            total, n = sums[0], sums[1]
    if total is not None:
        split.loss = float(total) / float(n)


def _ood_mean(model: nn.Module, source: FeatureSource, batches: Batches) -> Tensor:
    """Mean feature (float64) of an out-of-distribution set; its labels are ignored."""
    total, n = None, 0
    for batch in batches:
        h = source(model, batch[0])[1].detach().to(torch.float64).sum(0)
        total = h if total is None else total + h
        n += len(batch[0])
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


def _score_keys(
    train: NCAccumulator, classifier: Head, samples: int
) -> tuple[dict[str, float | None], dict[str, Tensor]]:
    """Compactness, score/bias summaries and uniform accuracy of the train split (row chunks: any K); the
    score arrays keep the stored bias parameter (sign * b), as the BCE study plots it."""
    stats = train.stats()
    mu_g = stats.global_mean
    full_means = torch.zeros(train.num_classes, mu_g.shape[0], dtype=torch.float64, device=mu_g.device)
    full_means[stats.classes] = stats.means
    cos = torch.cat([compactness_terms(h, y, full_means, mu_g, stats.shift) for h, y, _ in train.kept])
    out: dict[str, float | None] = {"compactness": cos.mean().item()}
    weight, bias, sign = classifier
    if weight is None:
        return out | {"uniform_acc": None, "uniform_threshold": None, "bias_sign": None}, {}
    raw_bias = None if bias is None else sign * bias
    summary, arrays = stream_scores([(h, y) for h, y, _ in train.kept], weight, raw_bias, sign, samples)
    out |= summary
    out["bias_sign"] = sign
    if raw_bias is not None:
        arrays["bias"] = raw_bias.detach().float().cpu()
    return out, arrays


def _single_label(
    train: _Split | None,
    test: _Split | None,
    classifier: Head,
    settings: Settings,
    ood_mean: Tensor | None,
) -> tuple[dict[str, float | None], dict[str, dict[str, Tensor]]]:
    """The record and arrays from the passes' accumulators, every key assembled once."""
    out: dict[str, float | None] = {}
    arrays: dict[str, dict[str, Tensor]] = {}
    if train is not None:
        record, nc4 = train_metrics(train.acc)
        out |= record
        classes = class_arrays(train.acc.stats(), classifier.weight) | nc4
        arrays["classes"] = {k: v.cpu() for k, v in classes.items()}  # float64
        summary, arrays["scores"] = _score_keys(train.acc, classifier, settings.score_samples)
        out |= summary
        if ood_mean is not None:
            out["nc5"] = nc5(train.acc.stats(), ood_mean)
    out |= stream_metrics(None, test.acc if test is not None else None)
    for name in settings.layers:
        out |= layer_metrics(train.layers[name] if train else None, test.layers[name] if test else None, name)
    for split, prefix in ((train, ""), (test, "test_")):
        for metric in split.metrics if split is not None else []:
            out |= {prefix + k: v for k, v in metric.result(split.acc.stats()).items()}
    if train is not None and settings.kept_classes() is not None:
        keep = settings.kept_classes()
        out["classes_dropped"] = int(((settings.counts[0] > 0) & ~keep).sum())
        out["samples_dropped"] = int(train.acc.dropped)
    if settings.language:
        for split, prefix in ((train, ""), (test, "test_")):
            if split is not None:
                out[f"{prefix}dispersion"] = split.dispersion.value()
        if train is not None:
            stats = train.acc.stats()
            w = None if classifier.weight is None else classifier.weight.to(stats.means.device)[stats.classes]
            hbar = stats.means - stats.global_mean
            out |= lm_spreads(hbar, w)
            vectors = {"mean_norm": hbar.norm(dim=1)} | ({} if w is None else {"w_norm": w.norm(dim=1)})
            for name, v in vectors.items():  # per class, for the frequency views (NaN: not measured)
                full = torch.full((settings.num_classes,), torch.nan, dtype=torch.float64)
                arrays["classes"][name] = full.index_copy_(0, stats.classes.cpu(), v.cpu().double())
    if train is not None and settings.frequency_bins:
        out |= frequency_summaries(arrays["classes"], settings.frequency_bins)
    return out, arrays


def _open_split(settings: Settings, classifier: Head, train: _Split | None, test: bool, keep: bool) -> _Split:
    """Accumulators of a split: the train split keeps its features (nearest-centre step); the test split
    gets the train centres (when measured) and keeps its features only when `keep`."""
    k, strict, (weight, bias, _) = settings.num_classes, settings.strict, classifier
    if settings.multilabel:
        return _Split(None)
    classes = settings.kept_classes()
    vocab = {"classes": classes, "class_weights": settings.class_weights(int(test), classes)}
    dispersion = Dispersion() if settings.language else None
    if not test:
        return _Split(
            NCAccumulator(k, weight, bias, keep_features=True, strict=strict, **vocab),
            {n: NCAccumulator(k, keep_features=True, strict=strict) for n in settings.layers},
            _epoch_metrics(k),
            dispersion=dispersion,
        )
    centres = train.acc.stats().centres() if train is not None else None
    return _Split(
        NCAccumulator(k, weight, bias, ncc_means=centres, keep_features=keep, strict=strict, **vocab),
        {
            n: NCAccumulator(k, ncc_means=train.layers[n].stats().centres() if train is not None else None)
            for n in settings.layers
        },
        _epoch_metrics(k),
        dispersion=dispersion,
    )


@torch.no_grad()
def measure_epoch(
    model: nn.Module,
    train: Batches | None,
    test: Batches | None,
    settings: Settings,
    source: FeatureSource | None = None,
    classifier: Head = NO_HEAD,
    loss: LossLike | None = None,
    ood: Batches | None = None,
    collectives: Collectives | None = None,
) -> Measurement:
    """train_loss, test_loss (with a loss) and every metric of the metric table for the model as it is now.

    Either split may be None (then its keys are absent; the test split's nearest-centre keys need the train
    split). `source` gives the features (default: the model's `(logits, h)`); `classifier` the W, b of the
    W-dependent keys (none: null); a loss that ignores the classifier (`uses_logits` False) gives its own
    predictions and its extra keys per split (`loss.metrics`); `ood`: an out-of-distribution set for `nc5`.
    """
    source = source or ModelOutput()
    layers = () if settings.multilabel else tuple(settings.layers)
    settings = replace(settings, layers=layers)
    was_training = model.training
    model.eval()
    tap = FeatureTap(model, layers) if layers else None
    splits: dict[str, _Split] = {}
    try:
        extra = loss is not None and bool(loss.extra_metrics)
        for name, batches in (("train", train), ("test", test)):
            if batches is not None:
                keep = settings.features_per_class is not False or extra
                splits[name] = _open_split(settings, classifier, splits.get("train"), name == "test", keep)
                _pass(model, source, tap, batches, splits[name], loss, collectives)
        ood_mean = _ood_mean(model, source, ood) if ood is not None and "train" in splits else None
    finally:
        source.close()
        if tap is not None:
            tap.close()
        model.train(was_training)
    return _assemble(splits, settings, classifier, loss, ood_mean)


def _assemble(
    splits: dict[str, _Split],
    settings: Settings,
    classifier: Head,
    loss: LossLike | None,
    ood_mean: Tensor | None,
) -> Measurement:
    """The record (losses first) and the arrays of the measured splits."""
    train, test = splits.get("train"), splits.get("test")
    out = {f"{name}_loss": s.loss for name, s in splits.items() if loss is not None}
    if settings.multilabel:
        if train is not None:
            tested = (test.features() if test is not None else None) or (None, None)
            out |= multilabel_metrics(*train.features(), classifier.weight, classifier.bias, *tested)
        for split in splits.values():  # saved features: the multiplicity-1 samples
            split.kept = [(h[t.sum(1) == 1], t[t.sum(1) == 1].argmax(1)) for h, t in split.kept]
        arrays: dict[str, dict[str, Tensor]] = {}
    else:
        record, arrays = _single_label(train, test, classifier, settings, ood_mean)
        out |= record
        for name, split in splits.items() if loss is not None and loss.extra_metrics else ():
            kept, prefix = split.features(), "" if name == "train" else "test_"
            out |= {prefix + k: v for k, v in loss.metrics(*kept).items()} if kept is not None else {}
    if settings.features_per_class is not False:
        arrays["features"] = {}
        for name, split in splits.items():
            kept = split.features()
            if kept is not None:
                h, y = _per_class(*kept, settings.features_per_class)
                arrays["features"] |= {f"{name}_features": h, f"{name}_labels": y}
    return Measurement(out, {kind: arrays[kind] for kind in ARRAYS if arrays.get(kind)})
