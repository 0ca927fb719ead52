"""model=gpt: parameter counts, causality, the head is nclab's (logits = h W^T + b, tied W = the token
embedding, stored once), per-position samples, and the options it refuses."""

import pytest
import torch

from nclab.config import resolve
from nclab.errors import ConfigError
from nclab.models import build_model, count_parameters, describe, parameter_groups

V, T = 50, 12


def config(*overrides):
    return resolve(None, ["model=gpt", "model.width=16", "model.heads=2", "model.context=16", *overrides])


def gpt(*overrides, shape=(T, V)):
    torch.manual_seed(0)
    return build_model(config(*overrides), shape, V)


@pytest.mark.parametrize(("tie", "bias", "depth"), [(True, True, 2), (True, False, 1), (False, True, 3)])
def test_parameter_count(tie, bias, depth):
    d, p = 16, 16  # width, positions
    model = gpt(f"model.tie={tie}", f"head.bias={bias}", f"model.depth={depth}")
    block = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (4 * d * d + 4 * d) + (4 * d * d + d)
    expected = V * d + bias * V + p * d + depth * block + 2 * d + (0 if tie else V * d)
    assert block == 12 * d * d + 13 * d
    assert count_parameters(model) == expected
    cfg = config(f"model.tie={tie}", f"head.bias={bias}", f"model.depth={depth}")
    assert describe(cfg, (T, V), V) == (d, expected)  # meta device, as `nclab models`


def test_features_are_per_position_after_the_final_norm_and_logits_use_the_head():
    model = gpt().eval()
    ids = torch.randint(0, V, (3, T))
    seen = {}
    model.backbone.ln_f.register_forward_hook(lambda m, a, out: seen.update(h=out))
    logits, h = model(ids)
    assert h.shape == (3 * T, 16) and logits.shape == (3 * T, V)
    assert torch.equal(h, seen["h"].reshape(-1, 16))  # row b*T + t = position t of window b
    w, b = model.head.weight, model.head.bias
    assert torch.allclose(logits, h @ w.T + b, atol=1e-6)


def test_tied_embedding_is_the_head_weight_stored_once():
    model = gpt()
    ids = torch.tensor([[3, 7]])
    with torch.no_grad():
        model.head.weight[3] = 1.0
    emb = model.backbone.wpe.weight[0] + model.head.weight[3]
    assert model.backbone.wte is None and "backbone.wte.weight" not in model.state_dict()
    assert (
        sum(k.endswith("weight") and model.state_dict()[k].shape == (V, 16) for k in model.state_dict()) == 1
    )
    seen = {}
    model.backbone.drop.register_forward_hook(lambda m, a, out: seen.update(x=out))
    model(ids)
    assert torch.allclose(seen["x"][0, 0], emb)
    assert parameter_groups(model)["weight"] == [model.head.weight]  # the embedding decays as W
    untied = gpt("model.tie=false")
    assert untied.backbone.wte.weight.shape == (V, 16) and "backbone.wte.weight" in untied.state_dict()


def test_attention_is_causal():
    model = gpt("model.depth=2").eval()
    ids = torch.randint(0, V, (1, T))
    changed = ids.clone()
    changed[0, 7] = (ids[0, 7] + 1) % V
    h1, h2 = model(ids)[1], model(changed)[1]
    assert torch.equal(h1[:7], h2[:7]) and not torch.allclose(h1[7:], h2[7:])


def test_backward_reaches_every_parameter():
    model = gpt("model.tie=false", "model.dropout=0.1")
    logits, _ = model(torch.randint(0, V, (2, T)))
    logits.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(
    ("overrides", "shape", "fragment"),
    [
        ([], (3, 8, 8), "model=gpt reads token windows"),
        ([], (32, V), "data.context=32 is longer than model.context=16"),
        (["model.heads=3"], (T, V), "model.heads=3 must divide model.width=16"),
        (["head.fixdim=true"], (T, V), "head.fixdim is not defined for model=gpt"),
        (["head.kind=none"], (T, V), "set model.tie=false for head.kind=none"),
    ],
)
def test_refused_options(overrides, shape, fragment):
    with pytest.raises(ConfigError, match=fragment):
        gpt(*overrides, shape=shape)


def test_input_longer_than_the_positions_is_refused():
    with pytest.raises(ConfigError, match=r"longer than model\.context=16"):
        gpt()(torch.zeros(1, 17, dtype=torch.long))
