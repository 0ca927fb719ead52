"""Multi-label neural collapse (Li et al. 2023, "Neural collapse in multi-label learning with pick-all-label
loss"; SPEC.md "Other measurements"). Targets are multi-hot (N, K); a sample's multiplicity m is its number
of labels. Pure functions, float64.

- NC metrics on the multiplicity-1 samples, with their own sample-weighted (properly centred) mu_G; the
  original shrinks mu_G by N_m1 / N_all and leaves NC2_H uncentred, nclab does not.
- Tag-wise average on the raw means: for each 2-label set S = {a, b} with mean mu_S,
  theta_S = angle(mu_S, mu_a + mu_b);
  tagwise_angle = mean_S theta_S / mean_{i<j, S'} angle(mu_i + mu_j, mu_S')
  (0 = perfect tag-wise average, ~1 = none); c_S = <mu_S, mu_a + mu_b> / ||mu_a + mu_b||^2 (`tagwise_coef`
  mean and `tagwise_coef_std` over S); tagwise_residual = mean_S ||mu_S - c_S (mu_a + mu_b)|| / ||mu_S||.
- Prediction: the top-m logits of a sample with m labels, correct only if they are exactly its set;
  `iou` = mean softmax mass on the true set (the original's only accuracy-type number).
"""

from __future__ import annotations

import torch
from torch import Tensor

from nclab.metrics.nc import linear_logits
from nclab.metrics.stream import NCAccumulator, stream_metrics

__all__ = ["iou", "multilabel_metrics", "pair_means", "set_accuracy", "tagwise"]


def _angles(a: Tensor, b: Tensor) -> Tensor:
    """Angles in degrees between the rows of a (n, d) and b (m, d): (n, m)."""
    cos = (a / a.norm(dim=1, keepdim=True)) @ (b / b.norm(dim=1, keepdim=True)).T
    return torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))


def pair_means(features: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """The 2-label sets present ((S, 2) class indices a < b) and their mean features (S, d)."""
    h = features.detach().to(torch.float64)
    hot = targets.to(h.device) > 0
    two = hot.sum(1) == 2
    k = hot.shape[1]
    idx = torch.where(hot[two], torch.arange(k, device=h.device), k).sort(1).values[:, :2]
    sets, group = torch.unique(idx[:, 0] * k + idx[:, 1], return_inverse=True)
    sums = torch.zeros(len(sets), h.shape[1], dtype=torch.float64, device=h.device).index_add_(
        0, group, h[two]
    )
    counts = torch.bincount(group, minlength=len(sets)).to(torch.float64)
    return torch.stack([sets // k, sets % k], 1), sums / counts[:, None]


def tagwise(class_means: Tensor, sets: Tensor, set_means: Tensor) -> dict[str, float | None]:
    """tagwise_angle, tagwise_coef (mean), tagwise_coef_std and tagwise_residual from raw means."""
    keys = ["tagwise_angle", "tagwise_coef", "tagwise_coef_std", "tagwise_residual"]
    if len(sets) == 0:
        return dict.fromkeys(keys)
    mu = class_means.to(torch.float64)
    mu_s = set_means.to(mu.device, torch.float64)
    tag_sum = mu[sets[:, 0]] + mu[sets[:, 1]]
    theta = _angles(mu_s, tag_sum).diagonal()
    i, j = torch.triu_indices(len(mu), len(mu), offset=1, device=mu.device)
    baseline = _angles(mu[i] + mu[j], mu_s).mean()
    coef = (mu_s * tag_sum).sum(1) / tag_sum.square().sum(1)
    residual = (mu_s - coef[:, None] * tag_sum).norm(dim=1) / mu_s.norm(dim=1)
    std = coef.std().item() if len(coef) > 1 else 0.0
    values = [(theta.mean() / baseline).item(), coef.mean().item(), std, residual.mean().item()]
    return dict(zip(keys, values, strict=False))


def set_accuracy(logits: Tensor, targets: Tensor) -> float:
    """Exact-set accuracy with the top-m rule: predict the m largest logits for a sample with m labels."""
    hot = targets.to(logits.device) > 0
    m = hot.sum(1)
    rank = logits.argsort(1, descending=True).argsort(1)  # rank of each class within its sample
    predicted = rank < m[:, None]
    return (predicted == hot).all(1).double().mean().item()


def iou(logits: Tensor, targets: Tensor) -> float:
    """Mean over samples of sum_{k in Y_i} softmax(z_i)_k (the original's "iou")."""
    p = logits.to(torch.float64).softmax(1)
    return (p * (targets.to(p.device) > 0)).sum(1).mean().item()


def multilabel_metrics(
    features: Tensor,
    targets: Tensor,
    weight: Tensor | None,
    bias: Tensor | None = None,
    test_features: Tensor | None = None,
    test_targets: Tensor | None = None,
) -> dict[str, float | None]:
    """NC metrics of the multiplicity-1 samples (train and test), tag-wise average of the train split, and
    `train_acc` / `test_acc` (exact-set, all samples) and `iou` / `test_iou` when there is a classifier."""
    h = features.detach().to(torch.float64)
    hot = targets.to(h.device) > 0
    one = hot.sum(1) == 1
    train = NCAccumulator(hot.shape[1], weight, bias, keep_features=True)  # one pass for NC and tag-wise
    train.update(h[one], hot[one].to(torch.long).argmax(1))
    test = None
    if test_features is not None and test_targets is not None:
        th = test_features.detach().to(torch.float64)
        t_one = (test_targets.to(th.device) > 0).sum(1) == 1
        test = NCAccumulator(hot.shape[1], weight, bias, ncc_means=train.stats().centres())
        test.update(th[t_one], test_targets.to(th.device)[t_one].argmax(1))
    out = stream_metrics(train, test)
    out |= tagwise(train.stats().raw_means(), *pair_means(h, targets))
    out["train_acc"] = out["iou"] = None
    if weight is not None:
        z = linear_logits(h, weight, bias)
        out["train_acc"], out["iou"] = set_accuracy(z, targets), iou(z, targets)
    if test is not None:
        out["test_acc"] = out["test_iou"] = None
        if weight is not None:
            z = linear_logits(th, weight, bias)
            out["test_acc"], out["test_iou"] = set_accuracy(z, test_targets), iou(z, test_targets)
    return out
