"""K x K-free geometry against brute-force float64 matrices, tiling forced to many blocks, and configurations
with known values: simplex ETF, regular polygons and cross-polytopes (K > d + 1: no simplex ETF exists)."""

import math

import numpy as np
import pytest
import torch

from nclab.metrics import geometry, nc_metrics
from nclab.metrics.geometry import etf_distance, offset_frobenius, pair_geometry, product_etf_distance
from nclab.metrics.nc import ncc_predict
from tests.metrics.test_nc import brute_force, energies, random_problem


def rand(k, p, seed):
    return torch.randn(k, p, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("k", "p"), [(3, 5), (40, 3), (7, 7)])
def test_offset_frobenius_matches_the_dense_matrix(k, p):
    x, y = rand(k, p, 0), rand(k, p, 1)
    a, b, c = 0.3, -1.7, 0.25
    dense = c * x @ y.T - a * torch.ones(k, k, dtype=torch.float64) - b * torch.eye(k, dtype=torch.float64)
    assert offset_frobenius(x, y, a, b, c) == pytest.approx(dense.square().sum().item(), rel=1e-12)
    dense_sym = x @ x.T - a - b * torch.eye(k, dtype=torch.float64)
    assert offset_frobenius(x, None, a, b) == pytest.approx(dense_sym.square().sum().item(), rel=1e-12)


def dense_etf(g):
    k = len(g)
    e = (np.eye(k) - 1 / k) / np.sqrt(k - 1)
    return np.linalg.norm(g / np.linalg.norm(g) - e)


@pytest.mark.parametrize(("k", "d"), [(50, 3), (12, 40), (200, 16)])
def test_etf_distances_match_the_dense_gram(k, d):
    w, h = rand(k, d, 2).numpy(), rand(k, d, 3).numpy()
    assert etf_distance(torch.from_numpy(h)) == pytest.approx(dense_etf(h @ h.T), rel=1e-11)
    assert product_etf_distance(torch.from_numpy(w), torch.from_numpy(h)) == pytest.approx(
        dense_etf(w @ h.T), rel=1e-11
    )


@pytest.mark.parametrize("tile", [1, 7, 50])
def test_tiled_pairs_equal_the_brute_force(monkeypatch, tile):
    """TILE forced down to a few values per block: many blocks, partial last blocks, the diagonal mask."""
    monkeypatch.setattr(geometry, "TILE", tile)
    h, y, w, b = random_problem(13, 6, seed=4)
    got = nc_metrics(h, y, w, b)
    want = brute_force(h.numpy(), y.numpy(), w.numpy(), b.numpy())
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def polygon(k):
    t = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return torch.stack([t.cos(), t.sin()], 1)


def cross_polytope(d):
    e = torch.eye(d, dtype=torch.float64)
    return torch.cat([e, -e])


def kernels(dist):
    return {
        "nc2_energy_log": math.log(1 / dist),
        "nc2_energy_riesz": 1 / dist,
        "nc2_energy_gauss": math.exp(-2 * dist**2),
    }


def polygon_energy(k):
    """Each vertex sees the others at chord lengths 2 sin(pi m / K), m = 1 .. K-1."""
    per = [kernels(2 * math.sin(math.pi * m / k)) for m in range(1, k)]
    return {key: sum(p[key] for p in per) / (k - 1) for key in per[0]}


def cross_energy(d):
    """2d points +-e_i: each sees 2d - 2 others at distance sqrt(2) and its antipode at 2."""
    near, far = kernels(math.sqrt(2)), kernels(2.0)
    return {key: ((2 * d - 2) * near[key] + far[key]) / (2 * d - 1) for key in near}


@pytest.mark.parametrize(
    ("points", "want", "angle"),
    [
        (polygon(7), polygon_energy(7), 360 / 7),
        (polygon(12), polygon_energy(12), 30.0),
        (cross_polytope(3), cross_energy(3), 90.0),
        (cross_polytope(8), cross_energy(8), 90.0),
    ],
)
def test_uniform_configurations_have_their_known_energy(points, want, angle):
    """K > d + 1 points spread uniformly; as class means (any scale, balanced classes: mu_G = 0)."""
    y = torch.arange(len(points)).repeat(3)
    e = 1e-3 * rand(*points.shape, seed=0)
    noise = torch.cat([e, -e, 0 * e])  # sums to 0 within each class: the means are the points exactly
    got = nc_metrics(4.0 * points[y] + noise, y, None)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    assert got["distinctiveness"] == pytest.approx(angle, rel=1e-9)
    assert got["nc1"] > 0 and got["cdnv"] > 0
    exact = pair_geometry(points)  # the exact points: energies to rounding
    for key, value in want.items():
        assert exact[key] == pytest.approx(value, rel=1e-12), key
    assert energies(points.numpy())["nc2_energy_riesz"] == pytest.approx(want["nc2_energy_riesz"], rel=1e-12)


def test_a_simplex_has_lower_riesz_energy_than_a_random_configuration():
    k = 6
    simplex = torch.eye(k, dtype=torch.float64) - 1 / k
    random = rand(k, k, 9)
    assert (
        pair_geometry(simplex)["nc2_energy_riesz"]
        < pair_geometry(random - random.mean(0))["nc2_energy_riesz"]
    )


def test_cdnv_is_exact_far_from_the_origin():
    """Means 1e8 away from the origin, 0.1 apart: centring first keeps CDNV exact, where torch.cdist's
    ||a||^2 + ||b||^2 - 2ab on the raw means (the former computation) loses every digit."""
    h, y, w, b = random_problem(30, 8, seed=5)
    small = 0.03 * h
    far = small + 1e8
    want = brute_force(small.numpy(), y.numpy(), w.numpy(), b.numpy())["cdnv"]
    got = nc_metrics(far, y, w, b)["cdnv"]
    assert got == pytest.approx(want, rel=1e-6)
    means = torch.stack([far[y == c].mean(0) for c in range(30)])
    var = torch.stack([(far[y == c] - means[c]).square().sum(1).mean() for c in range(30)])
    dist2 = torch.cdist(means, means).square()
    off = ~torch.eye(30, dtype=torch.bool)
    naive = ((var[:, None] + var[None, :])[off] / (2 * dist2[off])).mean().item()
    assert naive != pytest.approx(want, rel=1e-2)


def test_nearest_centre_is_exact_far_from_the_origin():
    """Centres 1e8 from the origin and 0.1 apart: the centred rule finds every nearest centre that the direct
    form min_k sum (h - c_k)^2 finds, while ||c_k||^2 - 2 h.c_k on raw vectors is swamped by rounding."""
    centres = 0.1 * rand(20, 8, 6) + 1e8
    h = centres.repeat(5, 1) + 0.01 * rand(100, 8, 7)
    direct = torch.stack([((h - c) ** 2).sum(1) for c in centres], 1).argmin(1)
    assert torch.equal(ncc_predict(h, centres), direct)
    expanded = (centres.square().sum(1) - 2 * h @ centres.T).argmin(1)
    assert (expanded != direct).any()
