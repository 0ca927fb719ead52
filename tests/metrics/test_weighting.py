"""Vocabulary-scale measurement: class weighting (Linguistic Collapse) against a from-scratch float64
reference, min_count / top_k filtering against nc_metrics of the kept samples, the settings that choose
them, and a K = 50,257 Zipf stream in bounded memory."""

import resource

import numpy as np
import pytest
import torch

from nclab.metrics import nc_metrics
from nclab.metrics.epoch import Settings
from nclab.metrics.stream import NCAccumulator, train_metrics

COUNTS = [200, 80, 30, 10, 5, 3]


def imbalanced(seed=0, d=8):
    g = torch.Generator().manual_seed(seed)
    k = len(COUNTS)
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(COUNTS)])
    y = y[torch.randperm(len(y), generator=g)]
    centres = torch.randn(k, d, generator=g, dtype=torch.float64) * 3 + 5
    h = centres[y] + torch.randn(len(y), d, generator=g, dtype=torch.float64) * (1 + y[:, None] * 0.3)
    w = torch.randn(k, d, generator=g, dtype=torch.float64)
    b = torch.randn(k, generator=g, dtype=torch.float64)
    return h, y, w, b


def reference(h, y, w, b):
    """Class weighting from scratch (numpy): mu_G = mean of class means, Sigma_W = mean of the class
    covariances."""
    h, y, w, b = (t.numpy() for t in (h, y, w, b))
    k = len(COUNTS)
    mu = np.stack([h[y == c].mean(0) for c in range(k)])
    mu_g = mu.mean(0)
    hbar = mu - mu_g
    sigma_w = np.mean([np.cov(h[y == c].T, bias=True) for c in range(k)], 0)
    sigma_b = hbar.T @ hbar / k
    vals, vecs = np.linalg.eigh(sigma_b)
    top = np.argsort(vals)[::-1][: k - 1]
    pinv = vecs[:, top] @ np.diag(1 / vals[top]) @ vecs[:, top].T
    e = (np.eye(k) - 1 / k) / np.sqrt(k - 1)

    def etf(g):
        return np.linalg.norm(g / np.linalg.norm(g) - e)

    norms = np.linalg.norm(hbar, axis=1)
    nearest = np.argmin(((h[:, None] - mu[None]) ** 2).sum(2), 1)
    pred = np.argmax(h @ w.T + b, 1)
    return {
        "nc1": np.trace(sigma_w @ pinv) / k,
        "nc1_tr": np.trace(sigma_w) / np.trace(sigma_b),
        "nc2_h": etf(hbar @ hbar.T),
        "nc3": etf(w @ hbar.T),
        "nc3_duality": np.linalg.norm(w / np.linalg.norm(w) - hbar / np.linalg.norm(hbar)),
        "equinorm_h": norms.std(ddof=1) / norms.mean(),
        "nc4_bias": np.linalg.norm(w @ mu_g + b),
        "nc4_ncc": np.mean([np.mean(nearest[y == c] != pred[y == c]) for c in range(k)]),
    }


def test_class_weighting_equals_a_from_scratch_reference():
    h, y, w, b = imbalanced()
    counts = torch.bincount(y).double()
    acc = NCAccumulator(len(COUNTS), w, b, keep_features=True, class_weights=1 / counts)
    for s in range(0, len(y), 37):
        acc.update(h[s : s + 37], y[s : s + 37])
    got = train_metrics(acc)[0]
    expected = reference(h, y, w, b)
    assert {k: got[k] for k in expected} == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert acc.stats().weighting == "class"
    sample = nc_metrics(h, y, w, b)  # sample weighting differs on an imbalanced set
    assert sample["nc1"] != pytest.approx(got["nc1"], rel=1e-3)


def test_class_weights_must_be_the_splits_counts():
    h, y, w, b = imbalanced()
    acc = NCAccumulator(len(COUNTS), w, b, class_weights=torch.ones(len(COUNTS)))
    acc.update(h, y)
    with pytest.raises(ValueError, match="class_weights are not 1 / the counts"):
        acc.stats()


def test_min_count_and_top_k_measure_the_kept_classes_only():
    h, y, w, b = imbalanced(1)
    counts = torch.bincount(y)
    settings = Settings(len(COUNTS), counts=(counts, counts), min_count=5, top_k=4)
    keep = settings.kept_classes()
    assert keep.tolist() == [True, True, True, True, False, False]
    acc = NCAccumulator(len(COUNTS), w, b, keep_features=True, classes=keep)
    for s in range(0, len(y), 50):
        acc.update(h[s : s + 50], y[s : s + 50])
    assert int(acc.dropped) == 8
    mask = keep[y]
    expected = nc_metrics(h[mask], y[mask], w, b, num_classes=len(COUNTS))
    got = train_metrics(acc)[0]
    assert {k: got[k] for k in expected} == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert Settings(6, counts=(counts, counts), min_count=31).kept_classes().tolist() == [1, 1, 0, 0, 0, 0]
    assert Settings(6, counts=(counts, counts)).kept_classes() is None  # no filter


def test_class_weights_of_the_settings():
    counts = torch.tensor([4, 0, 2])
    assert Settings(3, counts=(counts, counts)).class_weights(0, None) is None  # sample weighting
    weights = Settings(3, weighting="class", counts=(counts, counts)).class_weights(0, None)
    assert weights.tolist() == [0.25, 0.0, 0.5]
    with pytest.raises(ValueError, match="needs the class counts"):
        Settings(3, weighting="class").class_weights(0, None)


def test_vocabulary_scale_stream_in_bounded_memory():
    k, n, d = 50_257, 60_000, 16
    rng = np.random.default_rng(0)
    p = 1 / (np.arange(k) + 2.7)
    y = torch.from_numpy(rng.choice(k, n, p=p / p.sum()))
    h = torch.randn(n, d, generator=torch.Generator().manual_seed(0))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts = torch.bincount(y, minlength=k).double()
    acc = NCAccumulator(k, class_weights=torch.where(counts > 0, 1 / counts.clamp(min=1), counts))
    for s in range(0, n, 4096):
        acc.update(h[s : s + 4096], y[s : s + 4096])
    stats = acc.stats()
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert stats.n == n and len(stats.classes) == int((counts > 0).sum()) > 10_000
    assert grown_mib < 400  # a K x K float64 matrix would be 20 GB, an N x K one 24 GB
