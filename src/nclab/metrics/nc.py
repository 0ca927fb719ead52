"""Neural-collapse metrics from last-layer features and classifier (SPEC.md, "Metrics").

Everything is float64 and vectorised. Notation: N samples, K classes, d feature dimension,
mu_k class means, mu_G the sample-weighted global mean, Hbar = rows (mu_k - mu_G),
Sigma_W = (1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T, Sigma_B = (1/K) Hbar^T Hbar.

The within-class covariance is only ever needed through quadratic forms v^T Sigma_W v along the
at most K-1 right singular vectors v of Hbar (Sigma_B's range). The statistics come from the streaming
accumulator (`metrics.stream.NCAccumulator`, also behind the one-shot `nc_metrics`); this module turns them
into the record's keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from nclab.errors import NclabError
from nclab.metrics.geometry import TILE, etf_distance, pair_geometry, product_etf_distance
from nclab.metrics.table import keys

__all__ = [
    "ClassStats",
    "MissingClasses",
    "NearestCentre",
    "accuracy",
    "argmax_logits",
    "class_arrays",
    "etf_distance",
    "hits",
    "metrics_from_stats",
    "nc5",
    "ncc_predict",
]


@dataclass
class ClassStats:
    """Sufficient statistics of one split (float64), over the classes present in it.

    classes (K',) the indices of the present classes among the declared K (`num_classes`; the K - K' empty
    ones are skipped and counted), counts (K',), means (K', d) relative to `shift` (d,), the point the
    statistics were accumulated around (the raw means are means + shift: `raw_means()`; differences of means
    never need it, so they keep every digit under a large common offset), class_ss (K',) = sum over class k
    of ||h_i - mu_k||^2, and the within-class scatter S_W = N Sigma_W seen along Sigma_B's kept
    eigenvectors: directions V (d, r), eigenvalues (r,) of Sigma_B, within (r,) = diag(V^T S_W V).
    `weighting="class"` (Linguistic Collapse; SPEC.md "Language models"): mu_G is the mean of the class means
    and S_W = sum_k S_k / n_k = K Sigma_W, so every class weighs the same.
    """

    counts: Tensor
    means: Tensor
    class_ss: Tensor
    directions: Tensor
    eigenvalues: Tensor
    within: Tensor
    classes: Tensor
    num_classes: int
    shift: Tensor
    weighting: str = "sample"

    @property
    def n(self) -> int:
        return int(self.counts.sum().item())

    @property
    def empty(self) -> int:
        return self.num_classes - len(self.classes)

    @property
    def global_mean(self) -> Tensor:
        """mu_G relative to `shift`."""
        return global_mean(self.counts, self.means, self.weighting)

    @property
    def weight_total(self) -> int:
        """What S_W is divided by to give Sigma_W: N (sample weighting) or K' (class weighting)."""
        return self.n if self.weighting == "sample" else len(self.counts)

    def raw_means(self) -> Tensor:
        """The class means in the features' own coordinates."""
        return self.means + self.shift

    def centres(self) -> NearestCentre:
        """The nearest-class-centre rule with these means (held-out splits take the train centres)."""
        return NearestCentre(self.means, self.classes, self.shift)


def global_mean(counts: Tensor, means: Tensor, weighting: str = "sample") -> Tensor:
    """mu_G = (1/N) sum_k n_k mu_k (sample weighting), or (1/K) sum_k mu_k (class weighting)."""
    if weighting == "class":
        return means.mean(0)
    return (counts[:, None] * means).sum(0) / counts.sum()


class MissingClasses(NclabError, ValueError):
    """Strict measurement of a split in which a declared class has no sample (one CLI error line)."""


def present_classes(counts: Tensor, strict: bool) -> Tensor:
    """Indices of the classes with samples; `strict` (the old behaviour) raises if a class has none."""
    present = (counts > 0).nonzero().flatten()
    if strict and len(present) < len(counts):
        missing = (counts == 0).nonzero().flatten().tolist()
        shown = missing if len(missing) <= 10 else [*missing[:10], "..."]
        raise MissingClasses(
            f"classes {shown} have no samples; NC metrics need every class present in strict mode "
            "(measure.strict=false skips and counts them)"
        )
    if len(present) < 2:
        raise MissingClasses(f"only {len(present)} class has samples; NC metrics need at least 2")
    return present


CHUNK = 1024  # rows converted to float64 at a time: the working set stays in cache, nothing N x d is copied


def row_chunk(k: int) -> int:
    """Rows per chunk so that a chunk's N x K block (logits, distances) stays within one pairwise TILE."""
    return max(1, min(CHUNK, TILE // max(k, 1)))


class NearestCentre:
    """argmin_k ||h - c_k|| in centred coordinates: with o = mean_k c_k,
    argmin_k ||c_k - o||^2 - 2 (h - o).(c_k - o).

    The expanded form on raw vectors (||c_k||^2 - 2 h.c_k, or torch.cdist's mm path) cancels digits when the
    centres share a large common component; centring first removes it. `centres` may be given relative to
    `shift` (then h - o = (h - shift) - mean_k c_k). `classes` maps rows to class labels. Row chunks of at
    most one TILE of distances, written into one preallocated result (nothing N x K is held).
    """

    def __init__(self, centres: Tensor, classes: Tensor | None = None, shift: Tensor | None = None) -> None:
        c = centres.detach().to(torch.float64)
        self.shift = None if shift is None else shift.to(c.device, torch.float64)
        self.origin = c.mean(0)
        self.centres = c - self.origin
        self.sq = self.centres.square().sum(1)
        self.classes = classes

    @torch.no_grad()
    def __call__(self, h: Tensor) -> Tensor:
        pred = torch.empty(len(h), dtype=torch.long, device=self.origin.device)
        step = row_chunk(len(self.centres))
        for s in range(0, len(h), step):
            hc = h[s : s + step].to(self.origin.device, torch.float64)
            hc = (hc if self.shift is None else hc - self.shift) - self.origin
            torch.argmin(torch.addmm(self.sq, hc, self.centres.T, alpha=-2), 1, out=pred[s : s + step])
        return pred if self.classes is None else self.classes[pred]


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
    return ((stats.within / stats.weight_total) / stats.eigenvalues).sum().item() / len(stats.counts)


def _coefficient_of_variation(x: Tensor) -> float:
    """std (ddof=1) / mean, as Papyan et al. 2020's equinorm (torch.std)."""
    return (x.std() / x.mean()).item()


def class_arrays(stats: ClassStats, weight: Tensor | None) -> dict[str, Tensor]:
    """Per-class vectors over all K declared classes (NaN for empty ones), for the run's `classes/` arrays:
    `counts`; `nc1_class` = V_k / tr(Sigma_B) with V_k = tr(Sigma_k) the class's mean squared deviation;
    `nc3_cos` = cos(w_k, mu_k - mu_G) (self-duality per class; absent without a classifier)."""
    full = torch.full((stats.num_classes,), math.nan, dtype=torch.float64, device=stats.means.device)
    hbar = stats.means - stats.global_mean
    tr_b = hbar.square().sum() / len(hbar)
    out = {"counts": torch.zeros_like(full).index_copy_(0, stats.classes, stats.counts)}
    out["nc1_class"] = full.clone().index_copy_(0, stats.classes, stats.class_ss / stats.counts / tr_b)
    if weight is not None:
        w = weight.detach().to(hbar.device, torch.float64)[stats.classes]
        out["nc3_cos"] = full.clone().index_copy_(0, stats.classes, _row_cosines(w, hbar))
    return out


def _row_cosines(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


def metrics_from_stats(
    stats: ClassStats,
    weight: Tensor | None,
    bias: Tensor | None = None,
) -> dict[str, float | None]:
    """Every train-split metric of the metric table that depends on class statistics and the classifier
    only. Without empty classes the present classes are all K; otherwise W and b are restricted to them."""
    k = len(stats.counts)
    mu_g = stats.global_mean
    hbar = stats.means - mu_g
    var = stats.class_ss / stats.counts
    tr_b = hbar.square().sum() / k
    out: dict[str, float | None] = {
        "nc1": nc1_from_stats(stats),
        "nc1_tr": (
            (stats.class_ss.sum() / stats.n if stats.weighting == "sample" else var.mean()) / tr_b
        ).item(),
        "nc1_tr_class_max": (var.max() / tr_b).item(),
        "nc2_h": etf_distance(hbar),
        "equinorm_h": _coefficient_of_variation(hbar.norm(dim=1)),
        "classes_empty": stats.empty,
    }
    w = None if weight is None else weight.detach().to(mu_g.device, torch.float64)[stats.classes]
    out |= pair_geometry(hbar, var, w)
    if w is None:
        return out | dict.fromkeys(keys("classifier"))
    b = torch.zeros(k, dtype=torch.float64, device=w.device)
    if bias is not None:
        b = bias.detach().to(w.device, torch.float64)[stats.classes]
    duality = (w * hbar).sum(1)
    cos = _row_cosines(w, hbar)
    w_centered = w - w.mean(0)  # Zhou et al. 2022 centre the classifier's rows for NC2 and NC3
    return out | {
        "nc2_w": etf_distance(w),
        "nc2_w_centered": etf_distance(w_centered),
        "nc3": product_etf_distance(w, hbar),
        "nc3_centered": product_etf_distance(w_centered, hbar),
        "nc3_duality": (w / w.norm() - hbar / hbar.norm()).norm().item(),
        "nc3_uniform": abs(_coefficient_of_variation(duality)),
        "nc3_cos_mean": cos.mean().item(),
        "nc3_cos_min": cos.min().item(),
        "nc4_bias": (w @ (mu_g + stats.shift) + b).norm().item(),
        "equinorm_w": _coefficient_of_variation(w.norm(dim=1)),
    }


def nc5(stats: ClassStats, ood_mean: Tensor) -> float:
    """NC5, ID/OOD orthogonality (Ammar et al. 2024, NECO): mean_k |cos(mu_k, mu_G^OOD)| with mu_k the train
    class means and mu_G^OOD the mean feature of the out-of-distribution set (raw, uncentred, as NECO)."""
    o, means = ood_mean.to(stats.means.device, torch.float64), stats.raw_means()
    return ((means @ o).abs() / (means.norm(dim=1) * o.norm())).mean().item()


def linear_logits(h: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """z = h W^T + b (one allocation)."""
    w = weight.detach().to(h.device, h.dtype)
    return h @ w.T if bias is None else torch.addmm(bias.detach().to(h.device, h.dtype), h, w.T)


def argmax_logits(h: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """argmax_k (W h + b)_k per row, in row chunks of at most one TILE of logits (nothing B x K is held)."""
    pred = torch.empty(len(h), dtype=torch.long, device=h.device)
    step = row_chunk(len(weight))
    for s in range(0, len(h), step):
        torch.argmax(linear_logits(h[s : s + step], weight, bias), 1, out=pred[s : s + step])
    return pred


def ncc_predict(h: Tensor, means: Tensor) -> Tensor:
    """Nearest class centre argmin_k ||h - mu_k|| (centred, chunked: see `NearestCentre`)."""
    return NearestCentre(means)(h)


def hits(pred: Tensor, targets: Tensor) -> Tensor:
    """Correct predictions in a batch, a count left on the device: pred == label, or for N x K target rows
    (multi-hot, mixed) the predicted class carries the row's largest weight. Every accuracy counts here."""
    targets = targets.to(pred.device)
    if targets.dim() == 1:
        return (pred == targets).sum()
    return (targets.gather(1, pred[:, None]).squeeze(1) == targets.max(1).values).sum()


def accuracy(pred: Tensor, targets: Tensor) -> float:
    """hits / N."""
    return hits(pred, targets).item() / len(targets)


def nc4_per_class(mismatch: Tensor, counts: Tensor) -> tuple[dict[str, float], Tensor]:
    """Per-class NC4: the fraction of class-k samples whose network and nearest-centre predictions differ
    (NaN for empty classes); scalars `nc4_ncc_class_max` (worst class), `nc4_ncc_class_mean` (class mean)."""
    frac = mismatch.to(torch.float64) / counts
    seen = frac[counts > 0]
    return {"nc4_ncc_class_max": seen.max().item(), "nc4_ncc_class_mean": seen.mean().item()}, frac
