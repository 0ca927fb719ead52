"""The streaming accumulator equals the one-shot function, whatever the batching."""

import pytest
import torch

from nclab.metrics import NCAccumulator, nc_metrics, stream_metrics
from tests.metrics.test_nc import random_problem


@pytest.mark.parametrize("batch", [1, 7, 64, 10_000])
def test_stream_equals_one_shot(batch):
    h, y, w, b = random_problem(10, 16, seed=11)
    ht, yt, _, _ = random_problem(10, 16, seed=12)
    h, ht, w, b = h.float(), ht.float(), w.float(), b.float()
    want = nc_metrics(h, y, w, b, ht, yt)
    train = NCAccumulator(10, w, b, keep_features=True)
    for i in range(0, len(y), batch):
        train.update(h[i : i + batch], y[i : i + batch])
    test = NCAccumulator(10, w, b, ncc_means=train.stats().means)
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
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
