"""Linguistic Collapse's spreads and representation dispersion against their formulas written out here
(plain loops over classes and pairs, float64), and in blocks at a vocabulary's K; the frequency-rank bins
of the classes/ vectors (metrics.jsonl's `<vector>_bin<i>`, the figure kind `frequency`)."""

import itertools
import math

import numpy as np
import pytest
import torch

from nclab.config.run import MeasureConfig
from nclab.data.text import TokenSplits
from nclab.measure import settings
from nclab.metrics import geometry, table
from nclab.metrics.epoch import Head, Settings, measure_epoch
from nclab.metrics.lm import Dispersion, frequency_summaries, lm_spreads, log_kernel_var, rank_bins

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
    expected = written_out(means.tolist(), w.tolist()) | {"log_kern_coincident": 0}
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-14)
    assert lm_spreads(hbar, None)["simcos_var"] is None


def test_an_exact_simplex_has_no_spread():
    k = 6
    etf = torch.eye(k, dtype=F64) - 1 / k
    out = lm_spreads(etf, 2 * etf)
    zero = {"log_kern_var": 0.0, "log_kern_coincident": 0, "norms_log_var": 0.0, "simcos_var": 0.0}
    assert out == pytest.approx(zero, abs=1e-24)


def test_log_kernel_var_in_blocks_equals_one_block(monkeypatch):
    g = torch.Generator().manual_seed(1)
    hbar = torch.randn(300, 7, generator=g, dtype=F64)
    whole = log_kernel_var(hbar)
    monkeypatch.setattr(geometry, "TILE", 1000)  # blocks of 3 rows
    monkeypatch.setattr("nclab.metrics.lm.block_rows", lambda k: max(1, 1000 // k))
    assert log_kernel_var(hbar) == pytest.approx(whole, rel=1e-12)
    hbar[[10, 200]] = hbar[[4, 7]] * torch.tensor([[3.0], [0.5]], dtype=F64)  # two pairs in other blocks
    assert log_kernel_var(hbar)[1] == 2


def test_coincident_directions_are_left_out_of_log_kern_var_and_counted():
    g = torch.Generator().manual_seed(4)
    hbar = torch.randn(7, 4, generator=g, dtype=F64)
    hbar[5] = 3 * hbar[2]  # parallel centred means: ||u_5 - u_2|| = 0 up to rounding, log(1/0)
    hbar[6] = hbar[1] * 7 + 1e-12 * hbar[0]  # coincident to 1e-13 rad: below the cut, as good as parallel
    hbar[4] = hbar[0] + 1e-4 * hbar[3].norm() * torch.tensor([0.0, 0, 0, 1], dtype=F64)  # ~1e-4 rad: kept
    u = [(row / row.norm()).tolist() for row in hbar]
    kern = [
        math.log(1 / math.sqrt(sum((x - y) ** 2 for x, y in zip(u[i], u[j], strict=True))))
        for i in range(7)
        for j in range(i + 1, 7)
        if (i, j) not in ((2, 5), (1, 6))
    ]
    value, coincident = log_kernel_var(hbar)
    assert coincident == 2 and math.isfinite(value)
    assert value == pytest.approx(sample_var(kern), rel=1e-6)  # the 1e-4 rad pair: 2 - 2 cos to ~8 digits
    spreads = lm_spreads(hbar, None)
    assert spreads["log_kern_coincident"] == 2 and spreads["log_kern_var"] == value
    assert table.metric("log_kern_coincident").source == "nclab"


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


def test_rank_bins_average_classes_over_log_spaced_ranks():
    counts = np.array([5, 0, 100, 1, 30, 7, 2, 60, 9, 3], dtype=float)
    values = np.arange(10, dtype=float)  # class k has value k
    centres, means = rank_bins(counts, values, bins=3)
    order = [2, 7, 4, 8, 5, 0, 9, 6, 3]  # classes by count, the empty class 1 left out
    edges = np.unique(np.geomspace(1, 10, 4).astype(int))  # ranks [1, 2), [2, 4), [4, 10)
    assert edges.tolist() == [1, 2, 4, 10]
    expected = [np.mean(values[order][lo - 1 : hi - 1]) for lo, hi in itertools.pairwise(edges)]
    assert means.tolist() == pytest.approx(expected)
    assert centres.tolist() == pytest.approx([1.0, math.sqrt(2 * 3), math.sqrt(4 * 9)])
    values[[7, 4]] = np.nan  # ranks 2 and 3: the second bin has no value, the others skip NaN
    assert np.isnan(rank_bins(counts, values, bins=3)[1][1])


def test_frequency_summaries_are_the_bin_means_of_every_vector():
    counts = torch.tensor([3.0, 40, 0, 9, 1, 20, 2], dtype=F64)  # ranks: 1, 5, 3, 6, 7, 2, 4 (class 2 empty)
    nc1 = torch.tensor([0.3, 4.0, math.nan, 0.9, 0.1, 2.0, 0.2], dtype=F64)
    cos = torch.tensor([math.nan, 1.0, math.nan, math.nan, 0.5, 0.8, 0.6], dtype=F64)
    out = frequency_summaries({"counts": counts, "nc1_class": nc1, "nc3_cos": cos}, bins=4)
    # K' = 6: edges geomspace(1, 7, 5) = 1, 1.6, 2.6, 4.3, 7 -> 1, 2, 4, 7: ranks {1}, {2, 3}, {4, 5, 6}
    assert out == pytest.approx(
        {
            "rank_bin00": 1.0, "rank_bin01": math.sqrt(2 * 3), "rank_bin02": math.sqrt(4 * 6),
            "counts_bin00": 40.0, "counts_bin01": (20 + 9) / 2, "counts_bin02": (3 + 2 + 1) / 3,
            "nc1_class_bin00": 4.0, "nc1_class_bin01": 2.9 / 2, "nc1_class_bin02": (0.3 + 0.2 + 0.1) / 3,
            "nc3_cos_bin00": 1.0, "nc3_cos_bin01": 0.8, "nc3_cos_bin02": (0.6 + 0.5) / 2,
        },
        rel=1e-15,
    )  # fmt: skip
    cos[5] = math.nan
    assert frequency_summaries({"counts": counts, "nc3_cos": cos}, bins=4)["nc3_cos_bin01"] is None


class FeaturesAreInputs(torch.nn.Module):
    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, x):
        return self.head(x), x


def test_measured_epoch_writes_the_bins_of_its_classes_vectors_when_asked():
    g = torch.Generator().manual_seed(3)
    k, d = 12, 5
    p = 1 / torch.arange(1, k + 1, dtype=F64)
    y = torch.multinomial(p / p.sum(), 900, replacement=True, generator=g)
    h = torch.randn(k, d, generator=g, dtype=F64)[y] + torch.randn(900, d, generator=g, dtype=F64)
    head = FeaturesAreInputs(torch.nn.Linear(d, k, dtype=F64))
    batches = [(h[s : s + 100], y[s : s + 100]) for s in range(0, 900, 100)]
    counts = torch.bincount(y, minlength=k)
    vocab = Settings(k, weighting="class", counts=(counts, counts), language=True, frequency_bins=4)
    w, b = head.head.weight.detach(), head.head.bias.detach()
    out = measure_epoch(head, batches, None, vocab, classifier=Head(w, b))
    bins = {key: v for key, v in out.record.items() if "_bin" in key}
    assert bins == frequency_summaries(out.classes, 4)
    names = {"rank", "counts", "nc1_class", "nc3_cos", "nc4_ncc", "mean_norm", "w_norm"}
    assert {key.rpartition("_bin")[0] for key in bins} == names
    assert len(bins) == 7 * 3  # K' = 12: edges 1, 1.9, 3.6, 6.8, 13 -> 1, 3, 6, 13, three distinct bins
    assert all(table.metric(key).group == "frequency" for key in bins)
    plain = measure_epoch(head, batches, None, Settings(k), classifier=Head(w, b))
    assert not any("_bin" in key for key in plain.record)  # image runs: no bins unless asked


def test_frequency_bins_auto_is_twelve_for_token_data_only():
    ids = torch.arange(20) % 7
    tokens = TokenSplits(ids, ids[1:], ids, ids[1:], 7, context=4)
    assert settings(MeasureConfig(), 7, False, False, tokens).frequency_bins == 12
    assert settings(MeasureConfig(), 7, False, False, None).frequency_bins == 0
    assert settings(MeasureConfig(frequency_bins=5), 7, False, False, None).frequency_bins == 5
    assert settings(MeasureConfig(frequency_bins=0), 7, False, False, tokens).frequency_bins == 0
    with pytest.raises(ValueError, match="number of bins >= 1"):
        MeasureConfig(frequency_bins=-1)
