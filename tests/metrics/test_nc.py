"""nc_metrics against an independent brute-force implementation (per-class loops, numpy float64) and
against known geometry (an exact simplex ETF gives 0 everywhere)."""

import math

import numpy as np
import pytest
import torch

from nclab.metrics import etf_distance, nc_metrics


def energies(a):
    """Hyperspherical energies of the normalised rows, mean over unique pairs (Liu et al. 2023)."""
    u = [r / np.linalg.norm(r) for r in a]
    dist = np.array([np.linalg.norm(u[i] - u[j]) for i in range(len(u)) for j in range(i + 1, len(u))])
    return {
        "nc2_energy_log": np.mean(np.log(1 / dist)),
        "nc2_energy_riesz": np.mean(1 / dist),
        "nc2_energy_gauss": np.mean(np.exp(-2 * dist**2)),
    }


def brute_force(h, y, w, b, ht=None, yt=None):
    """Per-sample / per-class loops in numpy float64, written from SPEC.md's table."""
    h, w = np.asarray(h, np.float64), np.asarray(w, np.float64)
    b = np.zeros(len(w)) if b is None else np.asarray(b, np.float64)
    n, d = h.shape
    k = len(w)
    mu = np.zeros((k, d))
    cnt = np.zeros(k)
    for i in range(n):
        mu[y[i]] += h[i]
        cnt[y[i]] += 1
    mu /= cnt[:, None]
    mu_g = h.sum(0) / n
    sw = np.zeros((d, d))
    for i in range(n):
        v = h[i] - mu[y[i]]
        sw += np.outer(v, v)
    sw /= n
    sb = np.zeros((d, d))
    for c in range(k):
        v = mu[c] - mu_g
        sb += np.outer(v, v)
    sb /= k

    def nc1(sw, sb):
        return np.trace(sw @ np.linalg.pinv(sb, rcond=1e-10, hermitian=True)) / k

    target = (np.eye(k) - np.ones((k, k)) / k) / np.sqrt(k - 1)

    def etf(a):
        g = a @ a.T
        return np.linalg.norm(g / np.linalg.norm(g) - target)

    hbar = mu - mu_g

    def cosines(a):  # unique pairs i < j, each once (SPEC.md)
        vals = []
        for i in range(k):
            for j in range(i + 1, k):
                vals.append(a[i] @ a[j] / np.linalg.norm(a[i]) / np.linalg.norm(a[j]))
        return np.array(vals)

    def shape(a, s):
        norms = np.array([np.linalg.norm(r) for r in a])
        cos = cosines(a)
        return {
            f"equinorm_{s}": norms.std(ddof=1) / norms.mean(),
            f"equiangle_{s}": cos.std(ddof=1) if len(cos) > 1 else 0.0,
            f"maxangle_{s}": np.abs(cos + 1 / (k - 1)).mean(),
        }

    var = np.array([np.mean([np.sum((h[i] - mu[c]) ** 2) for i in range(n) if y[i] == c]) for c in range(k)])
    pairs = [(a, c) for a in range(k) for c in range(a + 1, k)]
    cd = np.array([(var[a] + var[c]) / (2 * np.sum((mu[a] - mu[c]) ** 2)) for a, c in pairs])
    cd4 = np.array([(var[a] + var[c]) / (2 * np.sum((mu[a] - mu[c]) ** 2) ** 2) for a, c in pairs])
    logits = h @ w.T + b
    ncc = [int(np.argmin([np.linalg.norm(h[i] - mu[c]) for c in range(k)])) for i in range(n)]
    net = [int(np.argmax(logits[i])) for i in range(n)]
    per_class_nc4 = [np.mean([ncc[i] != net[i] for i in range(n) if y[i] == c]) for c in range(k)]
    dual = np.array([w[c] @ hbar[c] for c in range(k)])
    dual_cos = np.array([w[c] @ hbar[c] / np.linalg.norm(w[c]) / np.linalg.norm(hbar[c]) for c in range(k)])
    out = {
        "nc1_tr": np.trace(sw) / np.trace(sb),
        "nc1_tr_class_max": var.max() / np.trace(sb),
        "classes_empty": 0,
        "cdnv_std": cd.std(ddof=1) if len(cd) > 1 else 0.0,
        "cdnv_max": cd.max(),
        "cdnv4": cd4.mean(),
        **energies(hbar),
        "distinctiveness": np.degrees(np.arccos(cosines(hbar).max())),
        "nc3_uniform": abs(dual.std(ddof=1) / dual.mean()),
        "nc3_cos_mean": dual_cos.mean(),
        "nc3_cos_min": dual_cos.min(),
        "nc4_ncc_class_max": max(per_class_nc4),
        "nc4_ncc_class_mean": np.mean(per_class_nc4),
        "nc1": nc1(sw, sb),
        "nc2_w": etf(w),
        "nc2_w_centered": etf(w - w.mean(0)),
        "nc2_h": etf(hbar),
        "nc3": np.linalg.norm((w @ hbar.T) / np.linalg.norm(w @ hbar.T) - target),
        "nc3_centered": np.linalg.norm(
            ((w - w.mean(0)) @ hbar.T) / np.linalg.norm((w - w.mean(0)) @ hbar.T) - target
        ),
        "nc3_duality": np.linalg.norm(w / np.linalg.norm(w) - hbar / np.linalg.norm(hbar)),
        "nc4_bias": np.linalg.norm(w @ mu_g + b),
        "nc4_ncc": np.mean([ncc[i] != np.argmax(logits[i]) for i in range(n)]),
        "cdnv": cd.mean(),
        "ncc_acc": np.mean([ncc[i] == y[i] for i in range(n)]),
        "train_acc": np.mean([np.argmax(logits[i]) == y[i] for i in range(n)]),
        **shape(hbar, "h"),
        **shape(w, "w"),
    }
    if ht is not None:
        ht = np.asarray(ht, np.float64)
        mt = np.array([ht[yt == c].mean(0) for c in range(k)])
        mgt = ht.mean(0)
        swt = sum(np.outer(ht[i] - mt[yt[i]], ht[i] - mt[yt[i]]) for i in range(len(ht))) / len(ht)
        sbt = sum(np.outer(mt[c] - mgt, mt[c] - mgt) for c in range(k)) / k
        out["test_nc1"] = nc1(swt, sbt)
        lt = ht @ w.T + b
        out["test_acc"] = np.mean([np.argmax(lt[i]) == yt[i] for i in range(len(ht))])
        ncc_t = [np.argmin([np.linalg.norm(ht[i] - mu[c]) for c in range(k)]) for i in range(len(ht))]
        out["test_ncc_acc"] = np.mean([ncc_t[i] == yt[i] for i in range(len(ht))])
        out["test_nc4_ncc"] = np.mean([ncc_t[i] != np.argmax(lt[i]) for i in range(len(ht))])
    return out


def random_problem(k, d, seed, n_min=3):
    """Unbalanced classes (counts n_min .. n_min + 3k), class means spread, within-class noise."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(n_min, n_min + 3 * k, (k,), generator=g)
    y = torch.repeat_interleave(torch.arange(k), counts)
    y = y[torch.randperm(len(y), generator=g)]
    means = 3 * torch.randn(k, d, generator=g, dtype=torch.float64)
    h = means[y] + torch.randn(len(y), d, generator=g, dtype=torch.float64)
    w = torch.randn(k, d, generator=g, dtype=torch.float64)
    b = torch.randn(k, generator=g, dtype=torch.float64)
    return h, y, w, b


CASES = [(2, 1), (2, 5), (3, 2), (3, 8), (10, 4), (10, 16)]  # d < K and d > K for each K


@pytest.mark.parametrize(("k", "d"), CASES)
def test_matches_brute_force(k, d):
    h, y, w, b = random_problem(k, d, seed=k * 100 + d)
    ht, yt, _, _ = random_problem(k, d, seed=k * 100 + d + 1)
    got = nc_metrics(h, y, w, b, ht, yt)
    want = brute_force(h.numpy(), y.numpy(), w.numpy(), b.numpy(), ht.numpy(), yt.numpy())
    assert set(want) == set(got)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-8, abs=1e-12), key


def test_float32_and_no_bias_match_brute_force():
    h, y, w, _ = random_problem(10, 16, seed=7)
    got = nc_metrics(h.float(), y, w.float())
    want = brute_force(h.float().numpy(), y.numpy(), w.float().numpy(), None)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-8, abs=1e-12), key


def simplex_etf(k, d, per_class, seed=0):
    """Exact NC: zero within-class spread, centred means forming a simplex ETF (rotated), W = means, b = 0."""
    g = torch.Generator().manual_seed(seed)
    p, _ = torch.linalg.qr(torch.randn(d, k, generator=g, dtype=torch.float64))
    m = (k / (k - 1)) ** 0.5 * (torch.eye(k, dtype=torch.float64) - 1.0 / k) @ p.T
    y = torch.arange(k).repeat_interleave(per_class)
    return 5.0 * m[y], y, m, torch.zeros(k, dtype=torch.float64)


def simplex_values(k):
    """The keys that are not 0 on an exact simplex ETF: pairwise distance^2 of unit vectors 2K/(K-1)."""
    d2 = 2 * k / (k - 1)
    return {
        "nc2_energy_log": -0.5 * math.log(d2),
        "nc2_energy_riesz": d2**-0.5,
        "nc2_energy_gauss": math.exp(-2 * d2),
        "distinctiveness": math.degrees(math.acos(-1 / (k - 1))),
        "nc3_cos_mean": 1.0,
        "nc3_cos_min": 1.0,
    }


@pytest.mark.parametrize(("k", "d"), [(2, 2), (3, 3), (10, 10), (10, 64)])
def test_exact_simplex_etf_gives_zero(k, d):
    h, y, w, b = simplex_etf(k, d, per_class=4)
    got = nc_metrics(h, y, w, b, h, y)
    known = simplex_values(k)
    for key, value in got.items():
        if key.endswith("acc"):
            assert value == 1.0, key
        else:
            assert value == pytest.approx(known.get(key, 0.0), abs=1e-9), key


def test_invariant_to_rotation_and_scaling():
    h, y, w, b = random_problem(10, 16, seed=3)
    q, _ = torch.linalg.qr(
        torch.randn(16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    )
    before = nc_metrics(h, y, w, b)
    after = nc_metrics(7.5 * h @ q, y, w @ q, b)
    for key in ["nc1", "nc2_h", "nc2_w", "nc2_w_centered", "nc3", "nc3_centered"]:
        assert after[key] == pytest.approx(before[key], rel=1e-9), key


def test_etf_distance_range_and_target():
    k = 5
    e = torch.eye(k, dtype=torch.float64) - 1.0 / k
    assert etf_distance(e) == pytest.approx(0.0, abs=1e-12)
    assert 0.0 < etf_distance(torch.eye(k)) <= 2.0


def test_collapsed_features_have_tiny_nc1_and_spread_ones_do_not():
    h, y, w, b = simplex_etf(10, 32, per_class=20)
    noise = torch.randn(h.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    small = nc_metrics(h + 1e-3 * noise, y, w, b)["nc1"]
    large = nc_metrics(h + 1.0 * noise, y, w, b)["nc1"]
    assert small < 1e-5 < 1e-2 < large


def test_missing_class_is_an_error_in_strict_mode():
    h, y, w, b = random_problem(3, 4, seed=0)
    with pytest.raises(ValueError, match="no samples"):
        nc_metrics(h[y != 1], y[y != 1], w, b, strict=True)


def test_empty_classes_are_skipped_and_counted():
    """Without class 1 the metrics are those of the 2-class problem on classes {0, 2} (W, b restricted)."""
    h, y, w, b = random_problem(4, 6, seed=0)
    ht, yt, _, _ = random_problem(4, 6, seed=1)
    keep, keep_t = (y != 1) & (y != 3), (yt != 1) & (yt != 3)
    got = nc_metrics(h[y != 1], y[y != 1], w, b)
    assert got["classes_empty"] == 1
    relabel = torch.tensor([0, -1, 1, 2])
    sub = [0, 2, 3]
    want = nc_metrics(h[y != 1], relabel[y[y != 1]], w[sub], b[sub])
    for key in ["nc1", "nc1_tr", "nc2_h", "nc2_w", "nc3", "cdnv", "equiangle_h", "maxangle_w", "nc4_bias"]:
        assert got[key] == pytest.approx(want[key], rel=1e-10), key
    assert got["ncc_acc"] == want["ncc_acc"]
    two = nc_metrics(h[keep], y[keep], w, b, ht[keep_t], yt[keep_t])
    assert two["classes_empty"] == 2 and two["test_ncc_acc"] is not None


def test_no_classifier_gives_null_w_metrics():
    h, y, _, _ = random_problem(3, 4, seed=0)
    got = nc_metrics(h, y, None)
    assert got["nc2_w"] is None and got["nc4_bias"] is None and got["train_acc"] is None
    assert got["nc1"] > 0 and got["ncc_acc"] > 0


def test_inputs_are_not_modified():
    h, y, w, b = random_problem(3, 4, seed=0)
    copy = h.clone()
    nc_metrics(h, y, w, b, h, y)
    assert torch.equal(h, copy)


@pytest.mark.cuda
def test_cuda_tensors_give_the_cpu_numbers():
    h, y, w, b = random_problem(10, 16, seed=5)
    ht, yt, _, _ = random_problem(10, 16, seed=6)
    cpu = nc_metrics(h.float(), y, w.float(), b.float(), ht.float(), yt)
    gpu = nc_metrics(
        h.float().cuda(), y.cuda(), w.float().cuda(), b.float().cuda(), ht.float().cuda(), yt.cuda()
    )
    for key, value in cpu.items():
        assert gpu[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_nc3_centered_ignores_a_shift_common_to_every_classifier_row():
    """Zhou et al. 2022 centre W's rows: W = Hbar + 1 c^T is collapsed for nc3_centered, not for nc3."""
    k, d = 4, 6
    means = torch.zeros(k, d, dtype=torch.float64)
    means[:, :k] = torch.eye(k, dtype=torch.float64) - 1.0 / k  # a centred simplex: mu_G = 0
    h = means.repeat_interleave(3, 0)
    y = torch.arange(k).repeat_interleave(3)
    w = means + torch.linspace(1, 2, d, dtype=torch.float64)
    out = nc_metrics(h, y, w, torch.zeros(k, dtype=torch.float64))
    assert out["nc3_centered"] == pytest.approx(0.0, abs=1e-12)
    assert out["nc3"] > 0.1
