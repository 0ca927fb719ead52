"""Linguistic Collapse's spreads and representation dispersion against their formulas written out here
(plain loops over classes and pairs, float64), and in blocks at a vocabulary's K."""

import math

import pytest
import torch

from nclab.metrics import geometry
from nclab.metrics.lm import Dispersion, lm_spreads, log_kernel_var

F64 = torch.float64


def sample_var(values):
    m = sum(values) / len(values)
    return sum((v - m) ** 2 for v in values) / (len(values) - 1)


def written_out(means, w):
    """Wu & Papyan 2024 as their paper states them, with mu_G the mean of the class means."""
    k = len(means)
    mu_g = [sum(means[c][i] for c in range(k)) / k for i in range(len(means[0]))]
    a = [[m - g for m, g in zip(row, mu_g, strict=True)] for row in means]
    norm = [math.sqrt(sum(x * x for x in row)) for row in a]
    u = [[x / n for x in row] for row, n in zip(a, norm, strict=True)]
    kern = [
        math.log(1 / math.sqrt(sum((x - y) ** 2 for x, y in zip(u[i], u[j], strict=True))))
        for i in range(k)
        for j in range(i + 1, k)
    ]
    wn = [math.sqrt(sum(x * x for x in row)) for row in w]
    cos = [sum(x * y for x, y in zip(w[c], a[c], strict=True)) / (wn[c] * norm[c]) for c in range(k)]
    return {
        "log_kern_var": sample_var(kern),
        "norms_log_var": sample_var([math.log(n) for n in norm]),
        "simcos_var": sample_var(cos),
    }


def test_spreads_equal_the_formulas_written_out():
    g = torch.Generator().manual_seed(0)
    means, w = torch.randn(9, 5, generator=g, dtype=F64) * 3 + 10, torch.randn(9, 5, generator=g, dtype=F64)
    hbar = means - means.mean(0)
    got = lm_spreads(hbar, w)
    expected = written_out(means.tolist(), w.tolist())
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-14)
    assert lm_spreads(hbar, None)["simcos_var"] is None


def test_an_exact_simplex_has_no_spread():
    k = 6
    etf = torch.eye(k, dtype=F64) - 1 / k
    out = lm_spreads(etf, 2 * etf)
    assert out == pytest.approx({"log_kern_var": 0.0, "norms_log_var": 0.0, "simcos_var": 0.0}, abs=1e-24)


def test_log_kernel_var_in_blocks_equals_one_block(monkeypatch):
    g = torch.Generator().manual_seed(1)
    hbar = torch.randn(300, 7, generator=g, dtype=F64)
    whole = log_kernel_var(hbar)
    monkeypatch.setattr(geometry, "TILE", 1000)  # blocks of 3 rows
    monkeypatch.setattr("nclab.metrics.lm.block_rows", lambda k: max(1, 1000 // k))
    assert log_kernel_var(hbar) == pytest.approx(whole, rel=1e-12)


def test_dispersion_streams_the_mean_pairwise_cosine_distance():
    g = torch.Generator().manual_seed(2)
    h = torch.randn(40, 6, generator=g, dtype=F64) + 0.5
    cos = torch.nn.functional.cosine_similarity(h[:, None], h[None], dim=2)
    pairs = [1 - cos[i, j].item() for i in range(40) for j in range(i + 1, 40)]
    disp = Dispersion()
    for chunk in h.split(7):  # any batching
        disp.update(chunk)
    assert disp.value() == pytest.approx(sum(pairs) / len(pairs), rel=1e-12)
    one = Dispersion()
    one.update(h[:1].float())  # any dtype
    assert one.value() is None
