"""Decision scores, biases, uniform accuracy, compactness/distinctiveness (SPEC.md, "Other measurements";
the nearest-learned-centre accuracy is the center losses' own metric, losses.py). Pure functions, float64.

Decision scores are bias-free, s_ik = w_k . h_i (BCE vs CE, 2025). The logits add the bias with a sign:
z = s + b for nclab's heads (nn.Linear), z = s - b under the BCE study's convention (b as a threshold);
every function that needs logits takes `bias_sign` and callers report it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nclab.metrics.geometry import Running, pair_geometry
from nclab.metrics.nc import row_chunk
from nclab.metrics.stream import NCAccumulator

__all__ = [
    "QUANTILES",
    "compactness",
    "compactness_terms",
    "decision_scores",
    "distinctiveness",
    "score_summary",
    "split_scores",
    "stream_scores",
    "summary",
    "uniform_accuracy",
]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def decision_scores(features: Tensor, weight: Tensor) -> Tensor:
    """s = H W^T (N, K), without the bias."""
    h = features.detach().to(torch.float64)
    return h @ weight.detach().to(h.device, torch.float64).T


def split_scores(scores: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """(positive scores s_{i,y_i} (N,), negative scores s_{i,k != y_i} (N, K-1))."""
    y = labels.to(scores.device, torch.long)
    own = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, y[:, None], True)
    return scores[own], scores[~own].view(len(scores), -1)


def summary(values: Tensor, prefix: str, moments: Running | None = None) -> dict[str, float]:
    """mean, std and QUANTILES of a flat sample, keyed `<prefix>_mean`, `<prefix>_std`, `<prefix>_q05`, ...;
    with `moments` (of a larger stream that `values` is a strided sample of) mean and std come from those."""
    v = values.detach().flatten().to(torch.float64)
    q = torch.quantile(v, torch.tensor(QUANTILES, dtype=torch.float64, device=v.device))
    if moments is None:
        out = {f"{prefix}_mean": v.mean().item(), f"{prefix}_std": v.std().item() if len(v) > 1 else 0.0}
    else:
        out = {f"{prefix}_mean": moments.mean.item(), f"{prefix}_std": moments.std()}
    return out | {f"{prefix}_q{round(p * 100):02d}": x for p, x in zip(QUANTILES, q.tolist(), strict=False)}


QUANTILE_SAMPLE = 1 << 24  # negative scores beyond this many: quantiles from an evenly strided sample of them


class StridedSample:
    """The entries at positions round(linspace(0, total - 1, count)) of a flat stream of `total` values,
    collected block by block (all of them when count >= total) into one preallocated float64 tensor."""

    def __init__(self, total: int, count: int, device: torch.device) -> None:
        self.positions = torch.linspace(0, total - 1, min(count, total), dtype=torch.float64, device=device)
        self.positions = self.positions.round().long()
        self.out = torch.empty(len(self.positions), dtype=torch.float64, device=device)
        self.offset = 0

    def add(self, block: Tensor) -> None:
        flat = block.flatten()
        lo, hi = self.offset, self.offset + len(flat)
        first, last = torch.searchsorted(self.positions, self.positions.new_tensor([lo, hi])).tolist()
        self.out[first:last] = flat[(self.positions[first:last] - lo).to(flat.device)]
        self.offset = hi

    def values(self) -> Tensor:
        return self.out


def stream_scores(
    batches: list[tuple[Tensor, Tensor]], weight: Tensor, bias: Tensor | None, bias_sign: int, samples: int
) -> tuple[dict[str, float | None], dict[str, Tensor]]:
    """`score_summary` and `uniform_accuracy` over (features, labels) batches, never holding the N x K scores:
    row chunks of s = H W^T give the positive scores (all N kept), the largest negative logit per sample, the
    moments of the negative scores (exact) and their quantiles (exact up to QUANTILE_SAMPLE values, else from
    an evenly strided sample), and strided samples of `samples` positive/negative scores for violin plots.
    `bias` is the stored parameter; logits z = s + bias_sign * bias."""
    w = weight.detach().to(torch.float64)
    k = len(w)
    n = sum(len(y) for _, y in batches)
    dev = w.device
    shift = None if bias is None else bias_sign * bias.detach().to(dev, torch.float64)
    neg_moments = Running(dev)
    neg_q = StridedSample(n * (k - 1), QUANTILE_SAMPLE, dev)
    neg_v = StridedSample(n * (k - 1), samples, dev)
    # per-sample results go into preallocated tensors: no list of small chunk results between the chunks'
    # large temporaries (which fragmented the heap: resident memory grew by ~N K 8 bytes at K = 20,000)
    pos_s, pos_z, top_neg = (torch.empty(n, dtype=torch.float64, device=dev) for _ in range(3))
    step, row = row_chunk(k), 0
    for h, y in batches:
        for s in range(0, len(y), step):
            scores, yc = decision_scores(h[s : s + step], w), y[s : s + step]
            p, neg = split_scores(scores, yc)
            neg_moments.add(neg)
            neg_q.add(neg)
            neg_v.add(neg)
            end = row + len(yc)
            pos_s[row:end] = p
            if shift is not None:
                p, neg = split_scores(scores.add_(shift), yc)
            pos_z[row:end] = p
            top_neg[row:end] = neg.max(1).values
            row = end
    out: dict[str, float | None] = summary(pos_s, "score_pos") | summary(
        neg_q.values(), "score_neg", neg_moments
    )
    out |= dict.fromkeys(summary(torch.zeros(1), "bias")) if bias is None else summary(bias, "bias")
    out["uniform_acc"], out["uniform_threshold"] = uniform_accuracy_from(pos_z, top_neg)
    arrays = {"score_pos": StridedSample(n, samples, dev), "score_neg": neg_v}
    arrays["score_pos"].add(pos_s)
    return out, {key: v.values().float().cpu() for key, v in arrays.items()}


def score_summary(scores: Tensor, labels: Tensor, bias: Tensor | None) -> dict[str, float | None]:
    """Summaries of the positive scores (`score_pos_*`), negative scores (`score_neg_*`) and biases (`bias_*`,
    null without a bias)."""
    pos, neg = split_scores(scores, labels)
    out: dict[str, float | None] = summary(pos, "score_pos") | summary(neg, "score_neg")
    if bias is None:
        return out | dict.fromkeys(summary(torch.zeros(1), "bias"))
    return out | summary(bias, "bias")


def uniform_accuracy(
    scores: Tensor, labels: Tensor, bias: Tensor | None, bias_sign: int = 1
) -> tuple[float, float]:
    """A_Uni = max_t (1/N) sum_i 1[z_{i,y_i} > t and max_{k != y_i} z_ik < t], one threshold t for all
    samples (Li et al. 2024, used by BCE vs CE 2025); z = s + bias_sign * b. Returns (A_Uni, a maximising t).
    """
    z = scores if bias is None else scores + bias_sign * bias.detach().to(scores.device, scores.dtype)
    pos, neg = split_scores(z, labels)
    return uniform_accuracy_from(pos, neg.max(1).values)


def uniform_accuracy_from(pos: Tensor, top_neg: Tensor) -> tuple[float, float]:
    """`uniform_accuracy` from each sample's positive logit p_i and largest negative logit a_i.

    Sample i is correct for t in the open interval (a_i, p_i). The count of intervals containing t is maximal
    just above some a_j, where it is #{i : a_i <= a_j} - #{i : p_i <= a_j} (intervals with p_i <= a_j also
    have a_i < a_j). O(N log N).
    """
    valid = top_neg < pos
    a, p = top_neg[valid], pos[valid]
    if len(a) == 0:
        return 0.0, float("nan")
    a_sorted, p_sorted = a.sort().values, p.sort().values
    count = torch.searchsorted(a_sorted, a_sorted, right=True) - torch.searchsorted(
        p_sorted, a_sorted, right=True
    )
    j = int(count.argmax())
    above = torch.cat([a_sorted[a_sorted > a_sorted[j]], p_sorted[p_sorted > a_sorted[j]]]).min()
    return count[j].item() / len(pos), ((a_sorted[j] + above) / 2).item()


def compactness_terms(
    features: Tensor, labels: Tensor, means: Tensor, global_mean: Tensor, shift: Tensor | None = None
) -> Tensor:
    """Per-sample cos(h_i - mu_G, mu_{y_i} - mu_G); means and mu_G may be relative to `shift`."""
    h = features.detach().to(means.device, torch.float64)
    h = (h if shift is None else h - shift) - global_mean
    target = (means - global_mean)[labels.to(means.device, torch.long)]
    return (h * target).sum(1) / (h.norm(dim=1) * target.norm(dim=1)).clamp(min=1e-300)


def compactness(features: Tensor, labels: Tensor, num_classes: int) -> float:
    """nclab's definition (not the BCE study's, which gives none): mean_i cos(h_i - mu_G, mu_{y_i} - mu_G)."""
    acc = NCAccumulator(num_classes)
    acc.update(features, labels)
    stats = acc.stats()
    return compactness_terms(features, labels, stats.means, stats.global_mean, stats.shift).mean().item()


def distinctiveness(means: Tensor, global_mean: Tensor) -> float:
    """nclab's definition: min over k != j of the angle (degrees) between mu_k - mu_G and mu_j - mu_G
    (tiled over pairs: `geometry.pair_geometry`; measured epochs take it from `metrics_from_stats`)."""
    return pair_geometry(means.to(torch.float64) - global_mean.to(torch.float64))["distinctiveness"]
