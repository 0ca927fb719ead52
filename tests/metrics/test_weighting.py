"""Vocabulary-scale measurement: class weighting (Linguistic Collapse) against a from-scratch float64
reference on every key the accumulator emits, min_count / top_k filtering against nc_metrics of the kept
samples, the settings that choose them, and a K = 50,257 Zipf stream in bounded memory."""

import resource

import numpy as np
import pytest
import torch

from nclab.metrics import nc_metrics
from nclab.metrics.epoch import Settings
from nclab.metrics.stream import NCAccumulator, stream_metrics, train_metrics

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


def etf(g):
    """|| G / ||G||_F - (I - 11^T/K) / sqrt(K - 1) ||_F."""
    k = len(g)
    return np.linalg.norm(g / np.linalg.norm(g) - (np.eye(k) - 1 / k) / np.sqrt(k - 1))


def cv(x):
    return x.std(ddof=1) / x.mean()


def pairs(m):
    """The entries k < j of a K x K matrix."""
    return m[np.triu_indices(len(m), 1)]


def pair_reference(hbar, var, w):
    """The pair statistics of the centred means and of W, each pair k < j once."""
    k = len(hbar)
    unit = hbar / np.linalg.norm(hbar, axis=1, keepdims=True)
    cos = pairs(unit @ unit.T)
    dist2 = pairs(((hbar[:, None] - hbar[None]) ** 2).sum(2))  # ||mu_k - mu_j||^2
    udist = np.sqrt(pairs(((unit[:, None] - unit[None]) ** 2).sum(2)))
    vsum = pairs(var[:, None] + var[None]) / 2
    cdnv = vsum / dist2
    wunit = w / np.linalg.norm(w, axis=1, keepdims=True)
    cos_w = pairs(wunit @ wunit.T)
    return {
        "equiangle_h": cos.std(ddof=1),
        "maxangle_h": np.abs(cos + 1 / (k - 1)).mean(),
        "distinctiveness": np.degrees(np.arccos(cos.max())),
        "cdnv": cdnv.mean(),
        "cdnv_std": cdnv.std(ddof=1),
        "cdnv_max": cdnv.max(),
        "cdnv4": (vsum / dist2**2).mean(),
        "nc2_energy_log": np.log(1 / udist).mean(),
        "nc2_energy_riesz": (1 / udist).mean(),
        "nc2_energy_gauss": np.exp(-2 * udist**2).mean(),
        "equiangle_w": cos_w.std(ddof=1),
        "maxangle_w": np.abs(cos_w + 1 / (k - 1)).mean(),
    }


def class_weighted(h, y):
    """Class means, mu_G = their mean, V_k, Sigma_W = the mean of the class covariances, and nc1."""
    k = len(COUNTS)
    mu = np.stack([h[y == c].mean(0) for c in range(k)])
    mu_g = mu.mean(0)
    hbar = mu - mu_g
    covs = [np.cov(h[y == c].T, bias=True) for c in range(k)]
    var = np.array([np.trace(c) for c in covs])  # V_k = mean ||h_i - mu_k||^2
    sigma_w, sigma_b = np.mean(covs, 0), hbar.T @ hbar / k
    vals, vecs = np.linalg.eigh(sigma_b)
    top = np.argsort(vals)[::-1][: k - 1]
    pinv = vecs[:, top] @ np.diag(1 / vals[top]) @ vecs[:, top].T
    return mu, mu_g, hbar, var, sigma_w, sigma_b, np.trace(sigma_w @ pinv) / k


def reference(h, y, w, b, h_test, y_test):
    """Class weighting from scratch (numpy): mu_G = mean of class means, Sigma_W = mean of the class
    covariances; every class and pair weighs the same, accuracies and test_nc4_ncc stay per sample."""
    h, y, w, b, h_test, y_test = (t.numpy() for t in (h, y, w, b, h_test, y_test))
    k = len(COUNTS)
    mu, mu_g, hbar, var, sigma_w, sigma_b, nc1 = class_weighted(h, y)
    nearest = np.argmin(((h[:, None] - mu[None]) ** 2).sum(2), 1)
    pred = np.argmax(h @ w.T + b, 1)
    disagree = np.array([np.mean(nearest[y == c] != pred[y == c]) for c in range(k)])
    test_nearest = np.argmin(((h_test[:, None] - mu[None]) ** 2).sum(2), 1)  # the train centres
    test_pred = np.argmax(h_test @ w.T + b, 1)
    duality = (w * hbar).sum(1)
    cos_wh = duality / (np.linalg.norm(w, axis=1) * np.linalg.norm(hbar, axis=1))
    w_centered = w - w.mean(0)
    return pair_reference(hbar, var, w) | {
        "nc1": nc1,
        "nc1_tr": np.trace(sigma_w) / np.trace(sigma_b),
        "nc1_tr_class_max": var.max() / np.trace(sigma_b),
        "nc2_h": etf(hbar @ hbar.T),
        "nc2_w": etf(w @ w.T),
        "nc2_w_centered": etf(w_centered @ w_centered.T),
        "nc3": etf(w @ hbar.T),
        "nc3_centered": etf(w_centered @ hbar.T),
        "nc3_duality": np.linalg.norm(w / np.linalg.norm(w) - hbar / np.linalg.norm(hbar)),
        "nc3_uniform": abs(cv(duality)),
        "nc3_cos_mean": cos_wh.mean(),
        "nc3_cos_min": cos_wh.min(),
        "equinorm_h": cv(np.linalg.norm(hbar, axis=1)),
        "equinorm_w": cv(np.linalg.norm(w, axis=1)),
        "nc4_bias": np.linalg.norm(w @ mu_g + b),
        "nc4_ncc": disagree.mean(),  # the class-balanced mean
        "nc4_ncc_class_mean": disagree.mean(),
        "nc4_ncc_class_max": disagree.max(),
        "train_acc": np.mean(pred == y),  # per sample (token), as the paper's accuracy
        "ncc_acc": np.mean(nearest == y),
        "classes_empty": k - len(np.unique(y)),
        "test_nc1": class_weighted(h_test, y_test)[-1],  # the test split's own class-weighted statistics
        "test_acc": np.mean(test_pred == y_test),
        "test_ncc_acc": np.mean(test_nearest == y_test),
        "test_nc4_ncc": np.mean(test_nearest != test_pred),
    }


def test_class_weighting_equals_a_from_scratch_reference():
    h, y, w, b = imbalanced()
    g = torch.Generator().manual_seed(5)
    order = torch.randperm(len(y), generator=g)
    h_test, y_test = h[order] + torch.randn(h.shape, generator=g, dtype=torch.float64), y[order]
    weights = 1 / torch.bincount(y).double()  # the test split has the same counts
    train = NCAccumulator(len(COUNTS), w, b, keep_features=True, class_weights=weights)
    for s in range(0, len(y), 37):
        train.update(h[s : s + 37], y[s : s + 37])
    test = NCAccumulator(len(COUNTS), w, b, ncc_means=train.stats().centres(), class_weights=weights)
    for s in range(0, len(y), 41):
        test.update(h_test[s : s + 41], y_test[s : s + 41])
    got = stream_metrics(train, test)
    expected = reference(h, y, w, b, h_test, y_test)
    assert set(expected) == set(got)  # every key the accumulators emit (37), none excluded
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert train.stats().weighting == test.stats().weighting == "class"
    sample = nc_metrics(h, y, w, b, h_test, y_test)  # sample weighting: the same data, the SPEC.md means
    # mu_G and Sigma_W move these:
    moved = {key for key in expected if sample[key] != pytest.approx(got[key], rel=1e-6)}
    assert moved == {
        "nc1",
        "nc1_tr",
        "nc1_tr_class_max",
        "nc2_h",
        "nc3",
        "nc3_centered",
        "nc3_duality",
        "nc3_uniform",
        "nc3_cos_mean",
        "nc3_cos_min",
        "nc4_bias",
        "nc4_ncc",
        "equinorm_h",
        "equiangle_h",
        "maxangle_h",
        "distinctiveness",
        "nc2_energy_log",
        "nc2_energy_riesz",
        "nc2_energy_gauss",
        "test_nc1",
    }  # the rest are per pair of means (cdnv*), of W only, or per sample (accuracies, test_nc4_ncc)


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
