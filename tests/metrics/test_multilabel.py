"""Multi-label metrics against brute-force loops, and the exact tag-wise average configuration."""

import itertools
import math

import pytest
import torch

from nclab.metrics import nc_metrics
from nclab.metrics.multilabel import iou, multilabel_metrics, pair_means, set_accuracy, tagwise


def problem(k=4, d=6, seed=0, c=None):
    """Multi-hot targets with every class single and every pair present; features = tag means + noise, or
    exactly c (mu_a + mu_b) for the pairs when c is given."""
    gen = torch.Generator().manual_seed(seed)
    mu = torch.randn(k, d, generator=gen, dtype=torch.float64) + 2
    rows, feats = [], []
    for a in range(k):
        for _ in range(5):
            rows.append(torch.eye(k, dtype=torch.float64)[a])
            feats.append(mu[a] + 0.3 * torch.randn(d, generator=gen, dtype=torch.float64))
    for a, b in itertools.combinations(range(k), 2):
        for _ in range(3):
            rows.append(torch.eye(k, dtype=torch.float64)[[a, b]].sum(0))
            if c is None:
                feats.append(0.6 * (mu[a] + mu[b]) + 0.5 * torch.randn(d, generator=gen, dtype=torch.float64))
            else:
                feats.append(c * (mu[a] + mu[b]))
    if c is not None:  # single-label features exactly at mu
        for i in range(5 * k):
            feats[i] = mu[i // 5]
    return torch.stack(feats), torch.stack(rows), mu


def angle(u, v):
    return math.degrees(math.acos(max(-1.0, min(1.0, float(u @ v / (u.norm() * v.norm()))))))


def brute_tagwise(h, t):
    k = t.shape[1]
    single = {a: [h[i] for i in range(len(h)) if t[i].sum() == 1 and t[i, a] == 1] for a in range(k)}
    mu = {a: torch.stack(v).mean(0) for a, v in single.items()}
    sets = {}
    for i in range(len(h)):
        labels = tuple(int(j) for j in t[i].nonzero().flatten())
        if len(labels) == 2:
            sets.setdefault(labels, []).append(h[i])
    mu_s = {s: torch.stack(v).mean(0) for s, v in sets.items()}
    theta = [angle(mu_s[(a, b)], mu[a] + mu[b]) for a, b in mu_s]
    base = [angle(mu[i] + mu[j], m) for i, j in itertools.combinations(range(k), 2) for m in mu_s.values()]
    coef = [float(mu_s[(a, b)] @ (mu[a] + mu[b]) / (mu[a] + mu[b]).square().sum()) for a, b in mu_s]
    res = [
        float((mu_s[(a, b)] - c * (mu[a] + mu[b])).norm() / mu_s[(a, b)].norm())
        for (a, b), c in zip(mu_s, coef, strict=True)
    ]
    mean = sum(coef) / len(coef)
    std = math.sqrt(sum((c - mean) ** 2 for c in coef) / (len(coef) - 1))
    return {
        "tagwise_angle": (sum(theta) / len(theta)) / (sum(base) / len(base)),
        "tagwise_coef": mean,
        "tagwise_coef_std": std,
        "tagwise_residual": sum(res) / len(res),
    }


def test_tagwise_matches_brute_force():
    h, t, _ = problem(seed=1)
    one = t.sum(1) == 1
    means = torch.stack([h[one & (t[:, a] > 0)].mean(0) for a in range(t.shape[1])])
    sets, set_means = pair_means(h, t)
    assert [tuple(s) for s in sets.tolist()] == list(itertools.combinations(range(4), 2))
    got = tagwise(means, sets, set_means)
    want = brute_tagwise(h, t)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-10), key
    assert 0 < got["tagwise_angle"] < 1


@pytest.mark.parametrize("c", [0.5, 1.0, 1.7])
def test_exact_scaled_average_gives_angle_zero_and_coef_c(c):
    h, t, _ = problem(seed=2, c=c)
    out = multilabel_metrics(h, t, None)
    assert out["tagwise_angle"] == pytest.approx(0, abs=1e-6)
    assert out["tagwise_coef"] == pytest.approx(c, rel=1e-12)
    assert out["tagwise_coef_std"] == pytest.approx(0, abs=1e-12)
    assert out["tagwise_residual"] == pytest.approx(0, abs=1e-12)


def brute_set_accuracy(z, t):
    correct = 0
    for zi, ti in zip(z.tolist(), t.tolist(), strict=True):
        m = int(sum(ti))
        top = sorted(range(len(zi)), key=lambda j: -zi[j])[:m]
        correct += set(top) == {j for j, v in enumerate(ti) if v > 0}
    return correct / len(z)


def test_set_accuracy_and_iou_match_loops():
    gen = torch.Generator().manual_seed(4)
    _, t, _ = problem(seed=3)
    z = torch.randn(len(t), 4, generator=gen, dtype=torch.float64) + 2 * t
    assert set_accuracy(z, t) == pytest.approx(brute_set_accuracy(z, t))
    p = z.softmax(1)
    want = sum(float(sum(p[i, j] for j in range(4) if t[i, j] > 0)) for i in range(len(t))) / len(t)
    assert iou(z, t) == pytest.approx(want)
    assert 0 < set_accuracy(z, t) < 1


def test_nc_on_multiplicity_one_with_a_centred_global_mean():
    h, t, _ = problem(seed=5)
    ht, tt, _ = problem(seed=6)
    w = torch.randn(4, 6, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    b = torch.randn(4, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    out = multilabel_metrics(h, t, w, b, ht, tt)
    one, tone = t.sum(1) == 1, tt.sum(1) == 1
    want = nc_metrics(h[one], t[one].argmax(1), w, b, ht[tone], tt[tone].argmax(1))
    for key in ["nc1", "nc2_h", "nc3", "nc4_bias", "test_nc1", "ncc_acc", "cdnv"]:
        assert out[key] == pytest.approx(want[key], rel=1e-12), key
    z = h @ w.T + b
    assert out["train_acc"] == pytest.approx(brute_set_accuracy(z, t))
    assert out["test_iou"] == pytest.approx(iou(ht @ w.T + b, tt))
