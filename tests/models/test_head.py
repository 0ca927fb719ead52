"""Heads: the fixed simplex ETF (geometry, never trained, in checkpoints) and the bias initialisations."""

import math

import pytest
import torch

from nclab.config import resolve
from nclab.errors import ConfigError
from nclab.models import build_model
from nclab.runs import Run


def etf_model(seed=0, k=10, *extra):
    return build_model(resolve(None, [f"seed={seed}", "model.width=32", "head.fixed=etf", *extra]), (64,), k)


@pytest.mark.parametrize(("k", "extra"), [(10, []), (3, []), (10, ["head.fixdim=true"])])
def test_etf_gram_is_the_simplex(k, extra):
    w = etf_model(0, k, *extra).head.weight.double()
    want = k / (k - 1) * (torch.eye(k, dtype=torch.float64) - 1 / k)
    assert w.shape == (k, 32 if not extra else k)
    assert torch.allclose(w @ w.T, want, atol=1e-6, rtol=0)
    assert (w.abs() > 1e-3).float().mean() > 0.9  # spread over all d coordinates, not [M | 0]


def test_etf_is_seeded_and_not_trained():
    model = etf_model(1)
    assert torch.equal(model.head.weight, etf_model(1).head.weight)
    assert not torch.allclose(model.head.weight, etf_model(2).head.weight)
    assert not model.head.weight.requires_grad
    assert all(p is not model.head.weight for p in model.parameters())
    before = model.head.weight.clone()
    bias_before = model.head.bias.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    x, y = torch.randn(16, 64), torch.arange(16) % 10
    for _ in range(3):
        logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.head.weight.grad is None and torch.equal(model.head.weight, before)
    assert not torch.equal(model.head.bias, bias_before)  # the bias stays trainable


def test_etf_is_saved_in_checkpoints(tmp_path):
    cfg = resolve(None, [f"out={tmp_path}", "name=r", "seed=3", "model.width=32", "head.fixed=etf"])
    model = build_model(cfg, (64,), 10)
    run = Run.create(cfg)
    run.save_checkpoint(1, model)
    state = run.load_checkpoint(1)
    assert torch.equal(state["head.weight"], model.head.weight)
    other = etf_model(seed=4)
    other.load_state_dict(state)
    assert torch.equal(other.head.weight, model.head.weight)


@pytest.mark.parametrize("fixed", [[], ["head.fixed=etf"]])
@pytest.mark.parametrize(
    ("mode", "check"),
    [
        ("zero", lambda b: torch.all(b == 0)),
        ("constant", lambda b: torch.all(b == 3.0)),
        ("normal", lambda b: abs(b.mean() - 3.0) < 0.3 and abs(b.std() - 0.5) < 0.15),
        ("uniform", lambda b: torch.all((b - 3.0).abs() <= 1 / math.sqrt(64)) and b.std() > 0.02),
    ],
)
def test_bias_init_modes(mode, check, fixed):
    torch.manual_seed(0)
    overrides = ["model.width=64", f"head.bias_init={mode}", "head.bias_mean=3", "head.bias_std=0.5", *fixed]
    bias = build_model(resolve(None, overrides), (64,), 50).head.bias.detach()
    assert bias.shape == (50,) and check(bias)


def test_no_bias():
    for fixed in ([], ["head.fixed=etf"]):
        model = build_model(resolve(None, ["model.width=32", "head.bias=false", *fixed]), (64,), 10)
        logits, h = model(torch.randn(4, 64))
        assert model.head.bias is None and torch.allclose(logits, h @ model.head.weight.T, atol=1e-6)


LOG960 = math.log(96 * 10)
BCE_MODES = {  # Li et al. 2025, models/linear.py, K = 10, before the mean shift
    1: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    2: [6.4 * k for k in range(10)],
    3: [6.4 * (9 - k) for k in range(10)],
    4: [math.log(96 * k + 1) for k in range(10)],
    5: [math.log(96 * (9 - k) + 1) for k in range(10)],
    6: [LOG960, LOG960, 0, 0, 0, LOG960, LOG960, 0, 0, 0],  # [0, K//4), [K//2, 3K//4) high
    7: [0, 0, LOG960, LOG960, LOG960, 0, 0, LOG960, LOG960, LOG960],
}


@pytest.mark.parametrize("mode", sorted(BCE_MODES))
@pytest.mark.parametrize("mean", [0, 3])
def test_bce_study_bias_modes_give_its_patterns_plus_the_mean(mode, mean):
    cfg = resolve(None, [f"head.bias_init={mode}", f"head.bias_mean={mean}", "head.bias_sign=-1"])
    bias = build_model(cfg, (20,), 10).head.bias.detach()
    assert bias.tolist() == pytest.approx([v + mean for v in BCE_MODES[mode]], abs=1e-5)


def test_bce_study_mode_0_is_the_shifted_uniform_and_modes_have_names():
    cfg = resolve(None, ["head.bias_init=0", "head.bias_mean=6"])
    assert cfg.head.bias_init == "uniform"
    bias = build_model(cfg, (16,), 10).head.bias.detach()
    assert ((bias - 6).abs() <= 1 / math.sqrt(16)).all() and bias.std() > 0
    assert resolve(None, ["head.bias_init=quarters_reversed"]).head.bias_init == "quarters_reversed"
    with pytest.raises(ConfigError, match="bias init mode 8 is not one of 0-7"):
        resolve(None, ["head.bias_init=8"])
