"""Decision scores, uniform accuracy (against a brute-force threshold scan), compactness, distinctiveness."""

import math

import numpy as np
import pytest
import torch

from nclab.metrics.scores import (
    compactness,
    decision_scores,
    distinctiveness,
    score_summary,
    split_scores,
    uniform_accuracy,
)


def brute_uniform(z: np.ndarray, y: np.ndarray) -> float:
    """max over every candidate threshold (midpoints of all sorted logit values) of the direct count."""
    pos = z[np.arange(len(y)), y]
    neg = np.where(np.eye(z.shape[1], dtype=bool)[y], -np.inf, z).max(1)
    values = np.unique(z)
    candidates = np.concatenate([(values[1:] + values[:-1]) / 2, values - 1, values + 1])
    return max(float(np.mean((pos > t) & (neg < t))) for t in candidates)


@pytest.mark.parametrize(("seed", "sign"), [(0, 1), (1, -1), (2, 1)])
def test_uniform_accuracy_matches_threshold_scan(seed, sign):
    gen = torch.Generator().manual_seed(seed)
    n, k = 60, 4
    y = torch.randint(0, k, (n,), generator=gen)
    s = torch.randn(n, k, generator=gen, dtype=torch.float64)
    s[torch.arange(n), y] += 1.5  # mostly correct, with overlap between samples
    b = torch.randn(k, generator=gen, dtype=torch.float64)
    got, t = uniform_accuracy(s, y, b, bias_sign=sign)
    z = (s + sign * b).numpy()
    assert got == pytest.approx(brute_uniform(z, y.numpy()))
    pos, neg = z[np.arange(n), y.numpy()], np.where(np.eye(k, dtype=bool)[y.numpy()], -np.inf, z).max(1)
    assert np.mean((pos > t) & (neg < t)) == pytest.approx(got)  # the returned threshold achieves it
    assert 0 < got <= (z.argmax(1) == y.numpy()).mean()  # A_Uni never exceeds plain accuracy


def test_uniform_accuracy_is_one_when_all_samples_separate_at_one_threshold():
    y = torch.tensor([0, 1, 2])
    s = torch.tensor([[5.0, 0, 0], [0, 6, 1], [1, 0, 7]], dtype=torch.float64)
    assert uniform_accuracy(s, y, None)[0] == 1.0
    # a sample whose positive score is below another's negative: no single threshold fits both
    s[2] = torch.tensor([0.0, 0.0, 0.5])
    s[1] = torch.tensor([0.0, 6.0, 1.0])
    assert uniform_accuracy(s, y, None)[0] == pytest.approx(2 / 3)


def test_scores_and_summaries():
    gen = torch.Generator().manual_seed(3)
    h = torch.randn(50, 6, generator=gen)
    w = torch.randn(3, 6, generator=gen)
    b = torch.tensor([0.5, -1.0, 2.0])
    y = torch.arange(50) % 3
    s = decision_scores(h, w)
    assert s.dtype == torch.float64 and torch.allclose(s, (h @ w.T).double(), atol=1e-5)
    pos, neg = split_scores(s, y)
    assert torch.equal(pos, s[torch.arange(50), y]) and neg.shape == (50, 2)
    assert set(neg[0].tolist()) == {s[0, 1].item(), s[0, 2].item()}
    out = score_summary(s, y, b)
    assert out["score_pos_mean"] == pytest.approx(pos.mean().item())
    assert out["score_neg_q50"] == pytest.approx(np.quantile(neg.numpy(), 0.5))
    assert out["score_pos_q95"] == pytest.approx(np.quantile(pos.numpy(), 0.95))
    assert out["bias_mean"] == pytest.approx(0.5) and out["bias_q05"] == pytest.approx(np.quantile(b, 0.05))
    assert score_summary(s, y, None)["bias_mean"] is None


def test_compactness_and_distinctiveness_on_a_simplex():
    k = 4
    means = torch.eye(k, dtype=torch.float64) - 1 / k  # centred simplex, mu_G = 0
    y = torch.arange(40) % k
    assert compactness(3 * means[y], y, k) == pytest.approx(1.0)
    assert distinctiveness(means, means.mean(0)) == pytest.approx(math.degrees(math.acos(-1 / (k - 1))))
    noisy = means[y] + 0.3 * torch.randn(
        40, k, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    assert 0 < compactness(noisy, y, k) < 1
