"""Streaming NC statistics: feed a split batch by batch, read the same numbers as `nc_metrics`.

Class means, per-class squared deviations and the pooled within-class scatter S_W = N Sigma_W are
merged batch by batch with Chan et al.'s parallel-variance update (exact, and stable in the
terminal phase where within-class spread is tiny next to the means): for class k with running
(n, mu) and a batch (m, mu_b, S_b),
    S <- S + S_b + (n m / (n + m)) (mu_b - mu)(mu_b - mu)^T,   mu <- mu + (m / (n + m)) (mu_b - mu).
The sums run around a fixed point, the first batch's mean (`shift`): a large common offset of the features
(1e4 with a spread of 1e-6) then costs no digits in the means' differences, as it would in (mu_b - mu).
Memory is O(d^2 + K d), float64, on the features' device; logits and nearest-centre distances go in row
chunks of at most one TILE (nothing B x K is held). For K up to the batch size the update runs on
all K classes (no host sync per batch); for larger K (a vocabulary) it runs on the classes present in the
batch only, so a batch costs O(B d^2) whatever K is.

The nearest-class-centre metrics of the train split (ncc_acc, nc4_ncc) compare every sample with
the *final* means, which a single pass cannot know in advance; with `keep_features=True` (default
for a train split) the accumulator keeps the features in their own dtype for that last step.
A held-out split is given the train centres up front (`ncc_means`) and keeps nothing.

This is the only path to the record: the one-shot `nc_metrics` is one batch through it, training, `nclab
measure` and `measure_model` stream through it (`metrics.epoch.measure_epoch`), and under torchrun each rank's
accumulator becomes the whole split's with `merge` (the collectives come from the caller).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from nclab.metrics.nc import (
    ClassStats,
    NearestCentre,
    argmax_logits,
    between_directions,
    global_mean,
    hits,
    metrics_from_stats,
    nc1_from_stats,
    nc4_per_class,
    present_classes,
)
from nclab.metrics.table import keys

__all__ = ["NCAccumulator", "layer_metrics", "nc_metrics", "stream_metrics", "train_metrics"]


class NCAccumulator:
    """Running class statistics of one split; `update` per batch, then `stats()` / `stream_metrics`.

    `strict=True` raises when a declared class has no samples; by default such classes are skipped and
    counted (`classes_empty`). `classes` (bool, K): only those classes are measured, the other samples are
    dropped and counted (`dropped`; measure.min_count / top_k). `class_weights` (K): w_k = 1/n_k with the
    split's final counts n_k known before the pass (token data, labelled splits): S_W accumulates
    sum_k S_k / n_k and the statistics are class-weighted (`ClassStats.weighting`)."""

    def __init__(
        self,
        num_classes: int,
        weight: Tensor | None = None,
        bias: Tensor | None = None,
        ncc_means: Tensor | NearestCentre | None = None,
        keep_features: bool = False,
        strict: bool = False,
        classes: Tensor | None = None,
        class_weights: Tensor | None = None,
    ) -> None:
        self.num_classes = num_classes
        self.classes = classes  # bool (K,): samples of the other classes are dropped and counted
        self.class_weights = None if class_weights is None else class_weights.to(torch.float64)
        self.dropped = 0
        self.weight = None if weight is None else weight.detach().to(torch.float64)
        self.bias = None if bias is None else bias.detach().to(torch.float64)
        self.ncc = ncc_means if not isinstance(ncc_means, Tensor) else NearestCentre(ncc_means)
        self.keep_features = keep_features
        self.strict = strict
        self.shift: Tensor | None = None
        self.counts: Tensor | None = None
        self.means: Tensor | None = None
        self.class_ss: Tensor | None = None
        self.scatter: Tensor | None = None
        self.correct = 0
        self.scored = False  # predictions were counted (a classifier, or predictions given to `update`)
        self.ncc_correct = 0
        self.ncc_mismatch = 0
        self.kept: list[tuple[Tensor, Tensor, Tensor | None]] = []
        self._stats: ClassStats | None = None

    def _init(self, h: Tensor) -> None:
        """Zero statistics, accumulated around the first batch's mean (`shift`)."""
        d, f64 = h.shape[1], {"dtype": torch.float64, "device": h.device}
        self.shift = h.mean(0)
        self.counts = torch.zeros(self.num_classes, **f64)
        self.means = torch.zeros(self.num_classes, d, **f64)
        self.class_ss = torch.zeros(self.num_classes, **f64)
        self.scatter = torch.zeros(d, d, **f64)

    @torch.no_grad()
    def update(self, features: Tensor, labels: Tensor, pred: Tensor | None = None) -> None:
        """Add one batch: features (B, d) in any float dtype, labels (B,); `pred` the model's class decisions
        when they do not come from the classifier (W, b) (default: argmax of W h + b in float64)."""
        h = features.detach().to(torch.float64)
        y = labels.to(h.device, torch.long)
        if self.classes is not None:
            keep = self.classes.to(y.device)[y]
            self.dropped = self.dropped + (~keep).sum()
            h, y, features = h[keep], y[keep], features[keep]
            pred = None if pred is None else pred[keep]
        if self.counts is None:
            self._init(h)
        self.invalidate()
        if self.num_classes <= len(y):  # all K rows: no data-dependent shapes, no host sync
            rows, local = torch.arange(self.num_classes, device=h.device), y
        else:  # only the classes in this batch: O(B d^2) whatever K is
            rows, local = torch.unique(y, return_inverse=True)
        self._merge(h - self.shift, rows, local)
        if pred is None and self.weight is not None:
            pred = argmax_logits(h, self.weight, self.bias)
        if pred is not None:
            self.scored = True
            self.correct = self.correct + hits(pred, y)  # stays on the device until read
        if self.ncc is not None:
            ncc = self.ncc(h)
            self.ncc_correct = self.ncc_correct + hits(ncc, y)
            if pred is not None:
                self.ncc_mismatch = self.ncc_mismatch + (ncc != pred).sum()
        if self.keep_features:
            self.kept.append((features.detach(), y, pred))

    def _merge(self, h: Tensor, rows: Tensor, local: Tensor) -> None:
        """Chan et al.'s update of classes `rows` with the batch (local[i] = row of sample i)."""
        r = len(rows)
        m = torch.zeros(r, dtype=torch.float64, device=h.device).index_add_(
            0, local, torch.ones_like(local, dtype=torch.float64)
        )
        sums = torch.zeros(r, h.shape[1], dtype=torch.float64, device=h.device).index_add_(0, local, h)
        mu_b = sums / m.clamp(min=1)[:, None]
        centred = h - mu_b[local]
        ss_b = torch.zeros_like(m).index_add_(0, local, centred.square().sum(1))
        n, mu = self.counts[rows], self.means[rows]
        total = n + m
        delta = mu_b - mu
        coef = torch.where(m > 0, n * m / total.clamp(min=1), torch.zeros_like(m))
        scaled = delta * coef.sqrt()[:, None]
        if self.class_weights is not None:  # S_W = sum_k S_k / n_k
            root = self.class_weights.to(h.device)[rows].sqrt()
            centred, scaled = centred * root[local][:, None], scaled * root[:, None]
        self.scatter += centred.T @ centred + scaled.T @ scaled
        self.class_ss[rows] += ss_b + coef * delta.square().sum(1)
        self.means[rows] = mu + delta * (m / total.clamp(min=1))[:, None]
        self.counts[rows] = total

    def invalidate(self) -> None:
        """Forget the cached `stats()` (after the running statistics were changed from outside)."""
        self._stats = None

    def stats(self) -> ClassStats:
        """Class statistics over the present classes (computed once until the next update)."""
        if self.counts is None:
            raise ValueError("no batch was added to the accumulator")
        if self._stats is None:
            classes = present_classes(self.counts, self.strict)
            counts, means = self.counts[classes], self.means[classes]
            weighting = "sample" if self.class_weights is None else "class"
            if weighting == "class" and not torch.allclose(
                counts * self.class_weights[classes], torch.ones_like(counts)
            ):
                raise ValueError("class_weights are not 1 / the counts the split gave")
            v, eig = between_directions(means - global_mean(counts, means, weighting))
            within = (v * (self.scatter @ v)).sum(0)
            self._stats = ClassStats(
                counts,
                means,
                self.class_ss[classes],
                v,
                eig,
                within,
                classes,
                self.num_classes,
                self.shift,
                weighting,
            )
        return self._stats

    @property
    def n(self) -> int:
        return int(self.counts.sum().item()) if self.counts is not None else 0

    @torch.no_grad()
    def merge(
        self, all_reduce: Callable[[Tensor], None], gather_rows: Callable[[Tensor], list[Tensor]]
    ) -> None:
        """Become the accumulator of the whole split from every process's part (torchrun: each rank
        streamed a contiguous shard). `all_reduce` sums a tensor over the processes in place, `gather_rows`
        returns every process's rows in rank order. Exact (Chan et al.'s parallel update):
            n_k = sum_r n_rk,   mu_k = sum_r n_rk mu_rk / n_k,
            S = sum_r [S_r + sum_k n_rk (mu_rk - mu_k)(mu_rk - mu_k)^T];
        hit counters are summed, kept features gathered in rank order (= split order). The ranks' shifts
        differ: every rank first moves its means to their common mean shift."""
        shifts = torch.cat([self.shift, torch.ones(1, dtype=torch.float64, device=self.shift.device)])
        all_reduce(shifts)
        shift = shifts[:-1] / shifts[-1]
        self.means += self.shift - shift
        self.shift = shift
        sums = self.means * self.counts[:, None]
        counts = self.counts.clone()
        all_reduce(counts)
        all_reduce(sums)
        means = sums / counts.clamp(min=1)[:, None]
        delta = self.means - means
        spread = delta * self.counts.sqrt()[:, None]
        if self.class_weights is not None:
            spread = spread * self.class_weights.to(spread.device).sqrt()[:, None]
        class_ss = self.class_ss + self.counts * delta.square().sum(1)
        scatter = self.scatter + spread.T @ spread
        all_reduce(class_ss)
        all_reduce(scatter)
        self.counts, self.means, self.class_ss, self.scatter = counts, means, class_ss, scatter
        hits = torch.stack(
            [
                torch.as_tensor(v, device=counts.device)
                for v in (self.correct, self.ncc_correct, self.ncc_mismatch)
            ]
        )
        all_reduce(hits)
        self.correct, self.ncc_correct, self.ncc_mismatch = hits[0], hits[1], hits[2]
        self.invalidate()
        if self.keep_features:
            h, y = (torch.cat([k[i] for k in self.kept]) for i in (0, 1))
            pred = torch.cat([k[2] for k in self.kept]) if self.kept[0][2] is not None else None
            hs = gather_rows(h)
            preds = gather_rows(pred) if pred is not None else [None] * len(hs)
            self.kept = list(zip(hs, gather_rows(y), preds, strict=True))


def stream_metrics(train: NCAccumulator | None, test: NCAccumulator | None = None) -> dict[str, float | None]:
    """The dict `nc_metrics` returns, from accumulators (test given `ncc_means=train.stats().centres()`);
    without a train accumulator only the `test_*` keys."""
    out = {} if train is None else train_metrics(train)[0]
    if test is not None:
        has_w, has_ncc = test.weight is not None, test.ncc is not None
        out["test_nc1"] = nc1_from_stats(test.stats())
        out["test_ncc_acc"] = int(test.ncc_correct) / test.n if has_ncc else None
        out["test_acc"] = int(test.correct) / test.n if test.scored else None
        out["test_nc4_ncc"] = int(test.ncc_mismatch) / test.n if has_w and has_ncc else None
    return out


def train_metrics(train: NCAccumulator) -> tuple[dict[str, float | None], dict[str, Tensor]]:
    """Train-split metrics and the per-class NC4 vector `nc4_ncc` (K, NaN for empty classes; empty dict
    without kept features or classifier)."""
    stats = train.stats()
    out = metrics_from_stats(stats, train.weight, train.bias)
    out["train_acc"] = int(train.correct) / train.n if train.scored else None
    out |= dict.fromkeys(["ncc_acc", "nc4_ncc", "nc4_ncc_class_max", "nc4_ncc_class_mean"])
    arrays: dict[str, Tensor] = {}
    if train.kept:
        centres = stats.centres()
        ncc_ok = 0
        mismatch = torch.zeros(train.num_classes, dtype=torch.float64, device=stats.means.device)
        for h, y, pred in train.kept:
            ncc = centres(h)
            ncc_ok = ncc_ok + hits(ncc, y)
            if pred is not None:
                mismatch.index_add_(0, y, (ncc != pred).to(torch.float64))
        out["ncc_acc"] = int(ncc_ok) / train.n
        if train.weight is not None:
            out["nc4_ncc"] = mismatch.sum().item() / train.n
            summary, arrays["nc4_ncc"] = nc4_per_class(mismatch, train.counts)
            out |= summary
            if stats.weighting == "class":  # every class weighs the same
                out["nc4_ncc"] = out["nc4_ncc_class_mean"]
    return out, arrays


def layer_metrics(
    train: NCAccumulator | None, test: NCAccumulator | None, prefix: str
) -> dict[str, float | None]:
    """The classifier-free metrics of one intermediate layer's features (the table's `depth` keys), keyed
    `<prefix>/<key>`."""
    out = stream_metrics(train, test)
    return {f"{prefix}/{key}": out[key] for key in keys("depth") if key in out}


def nc_metrics(
    features: Tensor,
    labels: Tensor,
    weight: Tensor | None,
    bias: Tensor | None = None,
    test_features: Tensor | None = None,
    test_labels: Tensor | None = None,
    num_classes: int | None = None,
    strict: bool = False,
) -> dict[str, float | None]:
    """Every scalar of the metric table for one model (train keys always, `test_*` when test data is given):
    each split as one batch through an `NCAccumulator`, the record from `stream_metrics`.

    features (N, d), labels (N,), weight (K, d) or None for classifier-free runs, bias (K,) or None.
    K = num_classes, else W's rows, else max label + 1; classes without train samples are skipped and
    counted (`classes_empty`) unless `strict`. Accuracies are fractions in [0, 1]; W-dependent keys are None
    without a classifier.
    """
    k = num_classes or (int(weight.shape[0]) if weight is not None else int(labels.max().item()) + 1)
    train = NCAccumulator(k, weight, bias, keep_features=True, strict=strict)
    train.update(features, labels)
    test = None
    if test_features is not None and test_labels is not None:
        test = NCAccumulator(k, weight, bias, ncc_means=train.stats().centres())
        test.update(test_features, test_labels)
    return stream_metrics(train, test)
