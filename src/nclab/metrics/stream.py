"""Streaming NC statistics: feed a split batch by batch, read the same numbers as `nc_metrics`.

Class means, per-class squared deviations and the pooled within-class scatter S_W = N Sigma_W are
merged batch by batch with Chan et al.'s parallel-variance update (exact, and stable in the
terminal phase where within-class spread is tiny next to the means): for class k with running
(n, mu) and a batch (m, mu_b, S_b),
    S <- S + S_b + (n m / (n + m)) (mu_b - mu)(mu_b - mu)^T,   mu <- mu + (m / (n + m)) (mu_b - mu).
Memory is O(d^2 + K d), float64, on the features' device.

The nearest-class-centre metrics of the train split (ncc_acc, nc4_ncc) compare every sample with
the *final* means, which a single pass cannot know in advance; with `keep_features=True` (default
for a train split) the accumulator keeps the features in their own dtype for that last step.
A held-out split is given the train means up front (`ncc_means`) and keeps nothing.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nclab.metrics.nc import (
    ClassStats,
    between_directions,
    global_mean,
    linear_logits,
    metrics_from_stats,
    nc1_from_stats,
    ncc_predict,
    require_all_classes,
)

__all__ = ["NCAccumulator", "stream_metrics"]


class NCAccumulator:
    """Running class statistics of one split; `update` per batch, then `stats()` / `stream_metrics`."""

    def __init__(
        self,
        num_classes: int,
        weight: Tensor | None = None,
        bias: Tensor | None = None,
        ncc_means: Tensor | None = None,
        keep_features: bool = False,
    ) -> None:
        self.num_classes = num_classes
        self.weight = None if weight is None else weight.detach().to(torch.float64)
        self.bias = None if bias is None else bias.detach().to(torch.float64)
        self.ncc_means = ncc_means
        self.keep_features = keep_features
        self.counts: Tensor | None = None
        self.means: Tensor | None = None
        self.class_ss: Tensor | None = None
        self.scatter: Tensor | None = None
        self.correct = 0
        self.ncc_correct = 0
        self.kept: list[tuple[Tensor, Tensor, Tensor | None]] = []

    def _init(self, d: int, device: torch.device) -> None:
        f64 = {"dtype": torch.float64, "device": device}
        self.counts = torch.zeros(self.num_classes, **f64)
        self.means = torch.zeros(self.num_classes, d, **f64)
        self.class_ss = torch.zeros(self.num_classes, **f64)
        self.scatter = torch.zeros(d, d, **f64)

    @torch.no_grad()
    def update(self, features: Tensor, labels: Tensor) -> None:
        """Add one batch: features (B, d) in any float dtype, labels (B,)."""
        h = features.detach().to(torch.float64)
        y = labels.to(h.device, torch.long)
        if self.counts is None:
            self._init(h.shape[1], h.device)
        m = torch.zeros_like(self.counts).index_add_(0, y, torch.ones_like(y, dtype=torch.float64))  # no sync
        sums = torch.zeros_like(self.means).index_add_(0, y, h)
        mu_b = sums / m.clamp(min=1)[:, None]
        centred = h - mu_b[y]
        ss_b = torch.zeros_like(self.class_ss).index_add_(0, y, centred.square().sum(1))
        total = self.counts + m
        delta = mu_b - self.means
        coef = torch.where(m > 0, self.counts * m / total.clamp(min=1), torch.zeros_like(m))
        scaled = delta * coef.sqrt()[:, None]
        self.scatter += centred.T @ centred + scaled.T @ scaled
        self.class_ss += ss_b + coef * delta.square().sum(1)
        self.means += delta * (m / total.clamp(min=1))[:, None]
        self.counts = total
        pred = None
        if self.weight is not None:
            pred = linear_logits(h, self.weight, self.bias).argmax(1)
            self.correct = self.correct + (pred == y).sum()  # stays on the device until read
        if self.ncc_means is not None:
            self.ncc_correct = self.ncc_correct + (ncc_predict(h, self.ncc_means) == y).sum()
        if self.keep_features:
            self.kept.append((features.detach(), y, pred))

    def stats(self) -> ClassStats:
        if self.counts is None:
            raise ValueError("no batch was added to the accumulator")
        require_all_classes(self.counts)
        v, eig = between_directions(self.means - global_mean(self.counts, self.means))
        within = (v * (self.scatter @ v)).sum(0)
        return ClassStats(self.counts, self.means, self.class_ss, v, eig, within)

    @property
    def n(self) -> int:
        return int(self.counts.sum().item()) if self.counts is not None else 0


def stream_metrics(train: NCAccumulator | None, test: NCAccumulator | None = None) -> dict[str, float | None]:
    """The dict `nc_metrics` returns, from accumulators (test given `ncc_means=train.means`); without a
    train accumulator only the `test_*` keys."""
    out = {} if train is None else _train_metrics(train)
    if test is not None:
        out["test_nc1"] = nc1_from_stats(test.stats())
        out["test_ncc_acc"] = int(test.ncc_correct) / test.n if test.ncc_means is not None else None
        out["test_acc"] = int(test.correct) / test.n if test.weight is not None else None
    return out


def _train_metrics(train: NCAccumulator) -> dict[str, float | None]:
    stats = train.stats()
    out = metrics_from_stats(stats, train.weight, train.bias)
    out["train_acc"] = int(train.correct) / train.n if train.weight is not None else None
    out["ncc_acc"] = out["nc4_ncc"] = None
    if train.kept:
        ncc_ok = mismatch = 0
        for h, y, pred in train.kept:
            ncc = ncc_predict(h, stats.means)
            ncc_ok = ncc_ok + (ncc == y).sum()
            if pred is not None:
                mismatch = mismatch + (ncc != pred).sum()
        out["ncc_acc"] = int(ncc_ok) / train.n
        out["nc4_ncc"] = int(mismatch) / train.n if train.weight is not None else None
    return out
