"""Neural-collapse metrics from last-layer features and classifier (SPEC.md, "Metrics").

Everything is float64 and vectorised. Notation: N samples, K classes, d feature dimension,
mu_k class means, mu_G the sample-weighted global mean, Hbar = rows (mu_k - mu_G),
Sigma_W = (1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T, Sigma_B = (1/K) Hbar^T Hbar.

The within-class covariance is only ever needed through quadratic forms v^T Sigma_W v along the
at most K-1 right singular vectors v of Hbar (Sigma_B's range). The one-shot function therefore
never forms the d x d matrix: it costs O(N d K), against O(N d^2) for the original scripts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "ClassStats",
    "etf_distance",
    "metrics_from_stats",
    "nc_metrics",
    "ncc_predict",
    "summarize_split",
    "summary_metrics",
]


@dataclass
class ClassStats:
    """Sufficient statistics of one split (float64).

    counts (K,), means (K, d), class_ss (K,) = sum over class k of ||h_i - mu_k||^2, and the within-class
    scatter S_W = N Sigma_W seen along Sigma_B's kept eigenvectors: directions V (d, r), eigenvalues (r,)
    of Sigma_B, within (r,) = diag(V^T S_W V).
    """

    counts: Tensor
    means: Tensor
    class_ss: Tensor
    directions: Tensor
    eigenvalues: Tensor
    within: Tensor

    @property
    def n(self) -> int:
        return int(self.counts.sum().item())

    @property
    def global_mean(self) -> Tensor:
        return global_mean(self.counts, self.means)


def global_mean(counts: Tensor, means: Tensor) -> Tensor:
    """Sample-weighted mu_G = (1/N) sum_k n_k mu_k."""
    return (counts[:, None] * means).sum(0) / counts.sum()


CHUNK = 1024  # rows converted to float64 at a time: the working set stays in cache, nothing N x d is copied


@dataclass
class SplitSummary:
    """One split after two chunked passes: class statistics, network and nearest-centre predictions."""

    stats: ClassStats
    pred: Tensor | None  # argmax_k (W h + b)_k, None without a classifier
    ncc: Tensor  # argmin_k ||h - c_k|| over the given centres (default: this split's own means)
    labels: Tensor


@torch.no_grad()
def summarize_split(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    ncc_means: Tensor | None = None,
) -> SplitSummary:
    """Pass 1: counts, class sums, network predictions. Pass 2 (means known): class_ss, the projections
    (h_i - mu_{y_i}) V onto Sigma_B's directions, nearest-centre predictions. O(N d K) flops, float64."""
    h, y = features.detach(), labels.to(features.device, torch.long)
    n, d = h.shape
    f64 = {"dtype": torch.float64, "device": h.device}
    counts = torch.bincount(y, minlength=num_classes).to(torch.float64)
    require_all_classes(counts)
    sums = torch.zeros(num_classes, d, **f64)
    preds = []
    for s in range(0, n, CHUNK):
        hc = h[s : s + CHUNK].to(torch.float64)
        sums.index_add_(0, y[s : s + CHUNK], hc)
        if weight is not None:
            preds.append(linear_logits(hc, weight, bias).argmax(1))
    means = sums / counts[:, None]
    v, eig = between_directions(means - global_mean(counts, means))
    centres = means if ncc_means is None else ncc_means.to(**f64)
    class_ss = torch.zeros(num_classes, **f64)
    within = torch.zeros(v.shape[1], **f64)
    nccs = []
    for s in range(0, n, CHUNK):
        hc, yc = h[s : s + CHUNK].to(torch.float64, copy=True), y[s : s + CHUNK]  # modified in place below
        nccs.append(ncc_predict(hc, centres))
        hc -= means[yc]
        class_ss.index_add_(0, yc, hc.square().sum(1))
        within += (hc @ v).square().sum(0)
    stats = ClassStats(counts, means, class_ss, v, eig, within)
    return SplitSummary(stats, torch.cat(preds) if preds else None, torch.cat(nccs), y)


def require_all_classes(counts: Tensor) -> None:
    missing = (counts == 0).nonzero().flatten().tolist()
    if missing:
        raise ValueError(f"classes {missing} have no samples; NC metrics need every class present")


def _etf_target(k: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """E_K = (I - 11^T/K) / sqrt(K-1), unit Frobenius norm."""
    eye = torch.eye(k, dtype=dtype, device=device)
    return (eye - 1.0 / k) / (k - 1) ** 0.5


def _gram_distance(gram: Tensor) -> float:
    return (gram / gram.norm() - _etf_target(gram.shape[0], gram.dtype, gram.device)).norm().item()


def etf_distance(a: Tensor) -> float:
    """ETF(A) = || A A^T / ||A A^T||_F - E_K ||_F, in [0, 2] (Zhu et al. 2021, "ETF_metric")."""
    a = a.to(torch.float64)
    return _gram_distance(a @ a.T)


def _cosines(a: Tensor) -> Tensor:
    """Off-diagonal pairwise cosines of the rows of a (all ordered pairs k != j)."""
    u = a / a.norm(dim=1, keepdim=True)
    cos = u @ u.T
    return cos[~torch.eye(len(a), dtype=torch.bool, device=a.device)]


def _shape_metrics(a: Tensor, suffix: str) -> dict[str, float]:
    """Papyan et al. 2020: equinorm (CoV of norms), equiangle (std of cosines), maxangle."""
    k = a.shape[0]
    norms = a.norm(dim=1)
    cos = _cosines(a)
    return {
        f"equinorm_{suffix}": (norms.std() / norms.mean()).item(),
        f"equiangle_{suffix}": cos.std().item(),
        f"maxangle_{suffix}": (cos + 1.0 / (k - 1)).abs().mean().item(),
    }


def between_directions(hbar: Tensor) -> tuple[Tensor, Tensor]:
    """Right singular vectors V (d x r) of Hbar and the eigenvalues of Sigma_B = Hbar^T Hbar / K they carry.

    At most K-1 eigenvalues are kept (Sigma_B has rank <= K-1), and none below max_eig * d * eps.
    """
    k, d = hbar.shape
    _, s, vh = torch.linalg.svd(hbar, full_matrices=False)
    eig = s.square() / k
    keep = eig > eig.max() * d * torch.finfo(eig.dtype).eps
    keep[k - 1 :] = False
    return vh[keep].T, eig[keep]


def nc1_from_stats(stats: ClassStats) -> float:
    """tr(Sigma_W Sigma_B^+) / K = (1/K) sum_j v_j^T Sigma_W v_j / lambda_j over Sigma_B's kept eigenpairs."""
    return ((stats.within / stats.n) / stats.eigenvalues).sum().item() / len(stats.counts)


def _cdnv(stats: ClassStats) -> float:
    """Galanti et al. 2022: mean over k != j of (V_k + V_j) / (2 ||mu_k - mu_j||^2)."""
    var = stats.class_ss / stats.counts
    dist2 = torch.cdist(stats.means, stats.means).square()
    off = ~torch.eye(len(var), dtype=torch.bool, device=var.device)
    return ((var[:, None] + var[None, :])[off] / (2 * dist2[off])).mean().item()


def metrics_from_stats(
    stats: ClassStats,
    weight: Tensor | None,
    bias: Tensor | None = None,
) -> dict[str, float | None]:
    """Every train-split metric of SPEC.md that depends on class statistics and the classifier only."""
    k = len(stats.counts)
    mu_g = stats.global_mean
    hbar = stats.means - mu_g
    out: dict[str, float | None] = {
        "nc1": nc1_from_stats(stats),
        "nc2_h": etf_distance(hbar),
        "cdnv": _cdnv(stats),
    }
    out |= _shape_metrics(hbar, "h")
    w_keys = ["nc2_w", "nc2_w_centered", "nc3", "nc3_centered", "nc3_duality", "nc4_bias"]
    w_keys += ["equinorm_w", "equiangle_w"]
    if weight is None:
        return out | dict.fromkeys([*w_keys, "maxangle_w"])
    w = weight.detach().to(mu_g.device, torch.float64)
    b = torch.zeros(k, dtype=torch.float64, device=w.device) if bias is None else bias.detach().double()
    w_centered = w - w.mean(0)  # Zhou et al. 2022 centre the classifier's rows for NC2 and NC3
    out |= {
        "nc2_w": etf_distance(w),
        "nc2_w_centered": etf_distance(w_centered),
        "nc3": _gram_distance(w @ hbar.T),
        "nc3_centered": _gram_distance(w_centered @ hbar.T),
        "nc3_duality": (w / w.norm() - hbar / hbar.norm()).norm().item(),
        "nc4_bias": (w @ mu_g + b.to(w.device)).norm().item(),
    }
    return out | _shape_metrics(w, "w")


def linear_logits(h: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    z = h @ weight.detach().to(h.device, h.dtype).T
    return z if bias is None else z + bias.detach().to(h.device, h.dtype)


def ncc_predict(h: Tensor, means: Tensor) -> Tensor:
    """Nearest class centre: argmin_k ||h - mu_k||^2 = argmin_k (||mu_k||^2 - 2 h . mu_k)."""
    h = h.to(means.device, torch.float64)
    return (means.square().sum(1) - 2 * h @ means.T).argmin(1)


def _fraction(mask: Tensor) -> float:
    return mask.double().mean().item()


def nc_metrics(
    features: Tensor,
    labels: Tensor,
    weight: Tensor | None,
    bias: Tensor | None = None,
    test_features: Tensor | None = None,
    test_labels: Tensor | None = None,
) -> dict[str, float | None]:
    """All metric keys of SPEC.md's table for one model (train keys always, `test_*` when test data is given).

    features (N, d), labels (N,), weight (K, d) or None for classifier-free runs, bias (K,) or None.
    Accuracies are fractions in [0, 1]; W-dependent keys are None without a classifier.
    """
    k = int(weight.shape[0]) if weight is not None else int(labels.max().item()) + 1
    train = summarize_split(features, labels, k, weight, bias)
    return summary_metrics(train, weight, bias, test_features, test_labels)


def summary_metrics(
    train: SplitSummary,
    weight: Tensor | None,
    bias: Tensor | None = None,
    test_features: Tensor | None = None,
    test_labels: Tensor | None = None,
) -> dict[str, float | None]:
    """`nc_metrics` from a train split already summarised with the same (weight, bias)."""
    k = len(train.stats.counts)
    out = metrics_from_stats(train.stats, weight, bias)
    out["ncc_acc"] = _fraction(train.ncc == train.labels)
    has_w = train.pred is not None
    out["train_acc"] = _fraction(train.pred == train.labels) if has_w else None
    out["nc4_ncc"] = _fraction(train.pred != train.ncc) if has_w else None
    if test_features is not None and test_labels is not None:
        test = summarize_split(test_features, test_labels, k, weight, bias, ncc_means=train.stats.means)
        out["test_nc1"] = nc1_from_stats(test.stats)
        out["test_ncc_acc"] = _fraction(test.ncc == test.labels)
        out["test_acc"] = _fraction(test.pred == test.labels) if has_w else None
    return out
