"""The streaming accumulator equals the one-shot function, whatever the batching."""

import pytest
import torch

from nclab.metrics import NCAccumulator, nc_metrics, stream_metrics
from tests.metrics.test_nc import brute_force, random_problem


@pytest.mark.parametrize("batch", [1, 7, 64, 10_000])
def test_stream_equals_one_shot(batch):
    h, y, w, b = random_problem(10, 16, seed=11)
    ht, yt, _, _ = random_problem(10, 16, seed=12)
    h, ht, w, b = h.float(), ht.float(), w.float(), b.float()
    want = nc_metrics(h, y, w, b, ht, yt)
    train = NCAccumulator(10, w, b, keep_features=True)
    for i in range(0, len(y), batch):
        train.update(h[i : i + batch], y[i : i + batch])
    test = NCAccumulator(10, w, b, ncc_means=train.stats().raw_means())
    for i in range(0, len(yt), batch):
        test.update(ht[i : i + batch], yt[i : i + batch])
    got = stream_metrics(train, test)
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_stream_is_stable_in_the_terminal_phase():
    """Tiny within-class spread next to large means: the merged scatter must not cancel catastrophically."""
    h, y, w, b = random_problem(5, 8, seed=2)
    means = torch.stack([h[y == c].mean(0) for c in range(5)])
    h = 1e4 * means[y] + 1e-3 * (h - means[y])
    want = nc_metrics(h, y, w, b)["nc1"]
    acc = NCAccumulator(5, w, b)
    for i in range(0, len(y), 3):
        acc.update(h[i : i + 3], y[i : i + 3])
    assert stream_metrics(acc)["nc1"] == pytest.approx(want, rel=1e-6)


def test_without_kept_features_ncc_keys_are_null():
    h, y, w, b = random_problem(3, 4, seed=0)
    acc = NCAccumulator(3, w, b)
    acc.update(h, y)
    out = stream_metrics(acc)
    assert out["ncc_acc"] is None and out["nc4_ncc"] is None
    assert out["nc1"] == pytest.approx(nc_metrics(h, y, w, b)["nc1"], rel=1e-10)


@pytest.mark.cuda
def test_stream_on_cuda_with_bf16_features():
    h, y, w, b = random_problem(10, 16, seed=11)
    hb = h.to(torch.bfloat16)
    want = nc_metrics(hb.float(), y, w, b)
    acc = NCAccumulator(10, w.cuda(), b.cuda(), keep_features=True)
    for i in range(0, len(y), 32):
        acc.update(hb[i : i + 32].cuda(), y[i : i + 32].cuda())
    got = stream_metrics(acc)
    for key, value in want.items():
        if value is not None and key in got:
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_many_classes_stream_equals_one_shot():
    """K = 1,000 classes, d = 64, batches smaller than K (the per-batch update on present classes only)."""
    k, d = 1000, 64
    g = torch.Generator().manual_seed(0)
    y = torch.arange(k).repeat(2)[torch.randperm(2 * k, generator=g)]
    means = torch.randn(k, d, generator=g, dtype=torch.float64)
    h = (means[y] + 0.5 * torch.randn(len(y), d, generator=g, dtype=torch.float64)).float()
    w = torch.randn(k, d, generator=g)
    b = torch.randn(k, generator=g)
    want = nc_metrics(h, y, w, b)
    acc = NCAccumulator(k, w, b, keep_features=True)
    for i in range(0, len(y), 500):
        acc.update(h[i : i + 500], y[i : i + 500])
    got = stream_metrics(acc)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@pytest.mark.parametrize("batch", [3, 50])
def test_present_class_update_equals_the_dense_update(batch):
    """Batches below K (only present classes updated) and at or above K (all K rows) agree exactly."""
    h, y, w, b = random_problem(10, 6, seed=9)
    dense, sparse = NCAccumulator(10, w, b), NCAccumulator(10, w, b)
    dense.update(h, y)
    for i in range(0, len(y), batch):
        sparse.update(h[i : i + batch], y[i : i + batch])
    for name in ("counts", "class_ss", "scatter"):
        assert torch.allclose(getattr(sparse, name), getattr(dense, name), rtol=1e-11, atol=1e-10), name
    # the means are kept relative to each accumulator's shift (its first batch's mean)
    assert torch.allclose(sparse.means + sparse.shift, dense.means + dense.shift, rtol=1e-11, atol=1e-10)


def test_stream_skips_and_counts_empty_classes():
    h, y, w, b = random_problem(5, 6, seed=1)
    keep = y != 2
    want = nc_metrics(h[keep], y[keep], w, b)
    acc = NCAccumulator(5, w, b, keep_features=True)
    acc.update(h[keep], y[keep])
    got = stream_metrics(acc)
    assert got["classes_empty"] == 1
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    strict = NCAccumulator(5, w, b, strict=True)
    strict.update(h[keep], y[keep])
    with pytest.raises(ValueError, match="no samples"):
        strict.stats()


@pytest.mark.parametrize("batch", [7, 64, None])  # None: the one-shot nc_metrics
def test_every_key_is_exact_under_a_large_common_offset(batch):
    """Features 1e4 from the origin with a spread of 1e-6 (issue 22): the accumulator sums around a fixed
    shift, so every key stays within 1e-10 of a float64 reference on the features without the offset
    (h - 1e4 is exact in float64; the offset enters the logits as b + 1e4 W 1)."""
    offset = 1e4
    data = [random_problem(6, 5, seed=s) for s in (21, 22)]
    (h, y, w, b), (ht, yt, _, _) = [(offset + 1e-6 * z, *rest) for z, *rest in data]
    x, xt = h - offset, ht - offset
    shifted_b = b + offset * w.sum(1)
    want = brute_force(x.numpy(), y.numpy(), w.numpy(), shifted_b.numpy(), xt.numpy(), yt.numpy())
    if batch is None:
        got = nc_metrics(h, y, w, b, ht, yt)
    else:
        train = NCAccumulator(6, w, b, keep_features=True)
        for i in range(0, len(y), batch):
            train.update(h[i : i + batch], y[i : i + batch])
        test = NCAccumulator(6, w, b, ncc_means=train.stats().centres())
        for i in range(0, len(yt), batch):
            test.update(ht[i : i + batch], yt[i : i + batch])
        got = stream_metrics(train, test)
    assert nc_metrics(x, y, w, shifted_b, xt, yt)["nc1"] == pytest.approx(want["nc1"], rel=1e-12)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-10, abs=1e-12), key
