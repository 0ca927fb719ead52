"""Losses by name (SPEC.md, "Losses"): `LOSSES.get(name)(options, num_classes, feature_dim) -> Loss`, each
declared with its options class (extending config.LossConfig) in components/losses.py.

Every loss is called as loss(logits, features, targets) -> scalar, so losses on the features (center
losses, feature decay) fit the same slot as losses on the logits. Targets are class indices (N,) or
float rows (N, K): soft targets (mixup / cutmix) for the single-label losses, multi-hot rows for
pick_all_label. Each loss defines a per-sample loss l_i; the batch loss is mean_i l_i or sum_i l_i
(`loss.reduction`), plus lambda_H/2 ||h_i||^2 per sample when `loss.feature_decay` = lambda_H > 0.

A loss answers what the loop asks, so no other module names a particular loss: `uses_logits` (does it read
the classifier), `predict` (its prediction rule, used for every accuracy), `param_groups` (its own learned
parameters and their optimizer group) and `metrics` (extra keys it reports on a measured split, declared in
metrics/table.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nclab.components.losses import (
    LOSSES,
    CenterLossOptions,
    FocalOptions,
    MseOptions,
    PickAllOptions,
    SmoothingOptions,
    StandaloneOptions,
)
from nclab.config import LossConfig
from nclab.metrics.nc import accuracy, ncc_predict

__all__ = ["LOSSES", "Loss", "build_loss", "losses_where"]


def target_rows(targets: Tensor, num_classes: int, dtype: torch.dtype) -> Tensor:
    """(N, K) float target rows: one-hot for class indices, the rows themselves otherwise."""
    if targets.dtype.is_floating_point:
        return targets.to(dtype)
    return F.one_hot(targets, num_classes).to(dtype)


def squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """(len(a), len(b)) matrix of ||a_i - b_j||^2 = ||a_i||^2 + ||b_j||^2 - 2 a_i . b_j, clamped at 0."""
    return (a.square().sum(1)[:, None] + b.square().sum(1)[None, :] - 2 * a @ b.T).clamp(min=0)


class Loss(nn.Module):
    """Per-sample loss `sample_loss`, reduced over the batch; `predict` gives the class decisions."""

    uses_logits = True  # False: the loss ignores the classifier, which then is not evaluated
    needs_inputs = (
        False  # True: the loss reads the input batch (images), so the UFM (free features) cannot run it
    )
    multilabel = False  # True: defined for multi-hot targets (one label per sample: the one-hot row)
    extra_metrics: tuple[str, ...] = ()  # the keys `metrics` returns (declared in metrics/table.py)
    # which closed form describes the loss's global minimisers in the UFM (ufm/theory.py): "cross_entropy"
    # (-log p_y exactly), "softmax" (ETF family, no norm formula), "mse", "bce", "pick_all" (multi-label
    # samples); None: none
    family: str | None = None

    def __init__(self, num_classes: int, reduction: str = "mean", feature_decay: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.reduction = reduction
        self.feature_decay = feature_decay

    def sample_loss(self, logits: Tensor, features: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError

    def per_sample(self, logits: Tensor, features: Tensor, targets: Tensor) -> Tensor:
        """l_i (N,), with the feature decay lambda_H/2 ||h_i||^2 on the raw features when set (the 2021
        code's sep_decay put it on L2-normalised features, where it is a constant)."""
        loss = self.sample_loss(logits, features, targets)
        if self.feature_decay:
            loss = loss + 0.5 * self.feature_decay * features.square().sum(1)
        return loss

    def reduce(self, per_sample: Tensor) -> Tensor:
        return per_sample.mean() if self.reduction == "mean" else per_sample.sum()

    def forward(self, logits: Tensor, features: Tensor, targets: Tensor) -> Tensor:
        return self.reduce(self.per_sample(logits, features, targets))

    def predict(self, logits: Tensor | None, features: Tensor) -> Tensor | None:
        """Class decisions (N,): the largest logit; None without logits (no prediction rule, no accuracy)."""
        return None if logits is None else logits.argmax(1)

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer groups {name, params, lr, weight_decay} of the loss's own parameters (none here)."""
        return []

    def metrics(self, features: Tensor, labels: Tensor) -> dict[str, float]:
        """Extra metrics of one measured split (keys without the `test_` prefix, declared in the table)."""
        return {}

    def rows(self, targets: Tensor, like: Tensor) -> Tensor:
        return target_rows(targets, self.num_classes, like.dtype)


class CrossEntropy(Loss):
    """ce: -sum_k t_k log p_k, t = e_y for a hard label; label_smoothing: t <- (1 - a) t + a/K
    (Szegedy et al. 2016; Zhou et al. 2022 use a = 0.05)."""

    def __init__(self, num_classes: int, smoothing: float = 0.0, **kw) -> None:
        super().__init__(num_classes, **kw)
        self.smoothing = smoothing

    @property
    def family(self) -> str:
        return "softmax" if self.smoothing else "cross_entropy"

    def sample_loss(self, logits: Tensor, features: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits, targets, reduction="none", label_smoothing=self.smoothing)


class MeanSquaredError(Loss):
    """mse: (1/K) sum_k (z_k - s t_k)^2 (Hui & Belkin 2021; Zhou et al. 2022 scale the one-hot target by
    s = 15): with reduction=mean this is F.mse_loss over the B x K entries, as the 2021 and 2022 codes."""

    family = "mse"

    def __init__(self, num_classes: int, scale: float = 1.0, **kw) -> None:
        super().__init__(num_classes, **kw)
        self.scale = scale

    def sample_loss(self, logits: Tensor, features: Tensor, targets: Tensor) -> Tensor:
        return (logits - self.scale * self.rows(targets, logits)).square().mean(1)


class Focal(Loss):
    """focal: -sum_k t_k (1 - p_k)^gamma log p_k, i.e. -(1 - p_y)^gamma log p_y for a hard label
    (Lin et al. 2017)."""

    family = "softmax"

    def __init__(self, num_classes: int, gamma: float = 3.0, **kw) -> None:
        super().__init__(num_classes, **kw)
        self.gamma = gamma

    def sample_loss(self, logits: Tensor, features: Tensor, targets: Tensor) -> Tensor:
        log_p = F.log_softmax(logits, dim=1)
        return -(self.rows(targets, logits) * (1 - log_p.exp()).pow(self.gamma) * log_p).sum(1)


class BinaryCrossEntropy(Loss):
    """bce: sum_k [-t_k log sigmoid(z_k) - (1 - t_k) log(1 - sigmoid(z_k))], summed over the K one-vs-all
    problems (the BCE-vs-CE study; its z = W h - b is `head.bias_sign=-1`)."""

    multilabel = True
    family = "bce"

    def sample_loss(self, logits: Tensor, features: Tensor, targets: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, self.rows(targets, logits), reduction="none").sum(1)


class PickAllLabel(Loss):
    """pick_all_label: sum_{k in Y_i} -log p_k for multi-hot rows (Li et al. 2023); `normalize` divides by
    |Y_i|, which is what the original's 1/m target rows did. With one label per sample it is ce."""

    multilabel = True
    family = "pick_all"

    def __init__(self, num_classes: int, normalize: bool = False, **kw) -> None:
        super().__init__(num_classes, **kw)
        self.normalize = normalize

    def sample_loss(self, logits: Tensor, features: Tensor, targets: Tensor) -> Tensor:
        t = self.rows(targets, logits)
        loss = -(t * F.log_softmax(logits, dim=1)).sum(1)
        return loss / t.sum(1) if self.normalize else loss


class Centers(Loss):
    """Learnable class centers c_k (K x d, initialised N(0, 1) as in Wen et al. 2016's released code), in
    their own optimizer group (no decay, `center_lr` or the run's lr); reports the accuracy of the nearest
    learned center as `center_acc` / `test_center_acc`."""

    def __init__(self, num_classes: int, feature_dim: int, center_lr: float | None = None, **kw) -> None:
        super().__init__(num_classes, **kw)
        self.centers = nn.Parameter(torch.randn(num_classes, feature_dim))
        self.center_lr = center_lr

    extra_metrics = ("center_acc",)

    def param_groups(self, lr: float) -> list[dict]:
        return [
            {"name": "centers", "params": [self.centers], "lr": self.center_lr or lr, "weight_decay": 0.0}
        ]

    def metrics(self, features: Tensor, labels: Tensor) -> dict[str, float]:
        return {"center_acc": accuracy(self.nearest_center(features), labels)}

    def center_distance(self, features: Tensor, targets: Tensor) -> Tensor:
        """||h_i - c_{y_i}||^2, or sum_k t_ik ||h_i - c_k||^2 for target rows."""
        if targets.dtype.is_floating_point:
            return (targets.to(features.dtype) * squared_distances(features, self.centers)).sum(1)
        return (features - self.centers[targets]).square().sum(1)

    def nearest_center(self, features: Tensor) -> Tensor:
        return ncc_predict(features.detach(), self.centers.detach().double())


class CenterLoss(Centers):
    """center: -log p_y + lambda/2 ||h - c_y||^2 (Wen et al. 2016; the mo-vic baseline had no 1/2)."""

    family = "cross_entropy"  # the centres take the class means: ce's minimisers

    def __init__(self, num_classes: int, feature_dim: int, weight: float = 1.0, **kw) -> None:
        super().__init__(num_classes, feature_dim, **kw)
        self.weight = weight

    def sample_loss(self, logits: Tensor, features: Tensor, targets: Tensor) -> Tensor:
        ce = F.cross_entropy(logits, targets, reduction="none")
        return ce + 0.5 * self.weight * self.center_distance(features, targets)


class StandaloneCenterLoss(Centers):
    """standalone_center (mo-vic 2019), no classifier: per sample
    l_i = w_intra ||h_i - c_{y_i}||^2 - w_inter sum_{j: y_j != y_i} log(1 + ||h_i - h_j||^2),
    so mean_i l_i has the inter term (1/m) sum over ordered different-class pairs, as the original.
    Soft rows weight the pair (i, j) by 1 - t_i . t_j. Predictions: the nearest learned center."""

    uses_logits = False

    def __init__(self, num_classes: int, feature_dim: int, w_intra: float = 1.0, w_inter: float = 0.1, **kw):
        super().__init__(num_classes, feature_dim, **kw)
        self.w_intra = w_intra
        self.w_inter = w_inter

    def inter(self, features: Tensor, targets: Tensor) -> Tensor:
        """sum_j [y_i != y_j] log(1 + ||h_i - h_j||^2), per sample i."""
        if targets.dtype.is_floating_point:
            t = targets.to(features.dtype)
            different = 1 - t @ t.T
        else:
            different = (targets[:, None] != targets[None, :]).to(features.dtype)
        return (different * torch.log1p(squared_distances(features, features))).sum(1)

    def sample_loss(self, logits: Tensor, features: Tensor, targets: Tensor) -> Tensor:
        intra = self.center_distance(features, targets)
        return self.w_intra * intra - self.w_inter * self.inter(features, targets)

    def predict(self, logits: Tensor, features: Tensor) -> Tensor:
        return self.nearest_center(features)


def _common(cfg: LossConfig) -> dict:
    return {"reduction": cfg.reduction, "feature_decay": cfg.feature_decay}


def ce(cfg: LossConfig, num_classes: int, feature_dim: int) -> Loss:
    return CrossEntropy(num_classes, **_common(cfg))


def label_smoothing(cfg: SmoothingOptions, num_classes: int, feature_dim: int) -> Loss:
    return CrossEntropy(num_classes, smoothing=cfg.smoothing, **_common(cfg))


def mse(cfg: MseOptions, num_classes: int, feature_dim: int) -> Loss:
    return MeanSquaredError(num_classes, scale=cfg.scale, **_common(cfg))


def focal(cfg: FocalOptions, num_classes: int, feature_dim: int) -> Loss:
    return Focal(num_classes, gamma=cfg.gamma, **_common(cfg))


def bce(cfg: LossConfig, num_classes: int, feature_dim: int) -> Loss:
    return BinaryCrossEntropy(num_classes, **_common(cfg))


def pick_all_label(cfg: PickAllOptions, num_classes: int, feature_dim: int) -> Loss:
    return PickAllLabel(num_classes, normalize=cfg.normalize, **_common(cfg))


def center(cfg: CenterLossOptions, num_classes: int, feature_dim: int) -> Loss:
    return CenterLoss(
        num_classes, feature_dim, weight=cfg.center_weight, center_lr=cfg.center_lr, **_common(cfg)
    )


def standalone_center(cfg: StandaloneOptions, num_classes: int, feature_dim: int) -> Loss:
    return StandaloneCenterLoss(
        num_classes, feature_dim, w_intra=cfg.w_intra, w_inter=cfg.w_inter, center_lr=cfg.center_lr,
        **_common(cfg),
    )  # fmt: skip


def build_loss(cfg: LossConfig, num_classes: int, feature_dim: int) -> Loss:
    """The configured loss (a base `LossConfig` is first validated against the loss's own options)."""
    from nclab.config import component_section

    return LOSSES.get(cfg.name)(component_section("loss", cfg), num_classes, feature_dim)


def losses_where(test: Callable[[Loss], bool]) -> list[str]:
    """The registered losses (each built with its default options, K = d = 2) that pass `test`: what an
    error line offers instead of a loss that does not fit (e.g. losses without logits, multi-label ones)."""
    return [n for n in LOSSES.names() if test(LOSSES.get(n)(LOSSES.options(n)(), 2, 2))]
