"""Per-layer features are the layer's true output (issue 22): a later in-place op (the MLP's
ReLU(inplace=True) after a BatchNorm, a residual `out += identity`) must not change what the hook saw."""

import pytest
import torch
from torch import nn

from nclab.config import resolve
from nclab.losses import Loss
from nclab.measure import Settings, measure
from nclab.metrics import nc_metrics
from nclab.metrics.hooks import FeatureTap, pooled
from nclab.models import build_model
from tests.models.test_build import SMALL

K, PER_CLASS = 3, 6
KEYS = ["nc1", "nc1_tr", "nc2_h", "equinorm_h", "cdnv", "ncc_acc", "test_nc1", "test_ncc_acc"]


class FeatureLoss(Loss):
    def sample_loss(self, logits, features, targets):
        return features.float().square().mean(1)


def modified_in_place(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Modules whose output tensor a later op of the forward changes in place, with their true output (a copy
    taken inside the hook): found by comparing that copy with the same tensor after the forward."""
    seen = {}

    def hook(name):
        def record(module, args, out):
            if isinstance(out, torch.Tensor):
                seen[name] = (out, out.detach().clone())

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return {n: copy for n, (out, copy) in seen.items() if not torch.equal(out, copy)}


def true_outputs(model: nn.Module, layers: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The pooled output of each layer, copied inside its hook."""
    got = {}
    modules = dict(model.named_modules())
    handles = [
        modules[n].register_forward_hook(lambda m, a, out, n=n: got.__setitem__(n, pooled(out).clone()))
        for n in layers
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return got


@pytest.mark.parametrize("name", sorted(SMALL))
def test_layer_keys_equal_a_computation_on_the_true_output(name):
    overrides, shape, _ = SMALL[name]
    torch.manual_seed(0)
    model = build_model(resolve(None, [f"model={name}", *overrides]), shape, K).eval()
    y = torch.arange(K).repeat(PER_CLASS)
    x, xt = torch.randn(len(y), *shape), torch.randn(len(y), *shape)
    changed = modified_in_place(model, x)
    if name in ("mlp", "resnet18", "preact_resnet"):  # BatchNorm + ReLU(inplace), residual additions
        assert changed, f"{name}: expected layers whose output is changed in place"
    layers = sorted(changed)[:4]
    if not layers:
        pytest.skip(f"{name} changes no layer output in place")
    got = measure(model, FeatureLoss(K), [(x, y)], [(xt, y)], Settings(K, layers=layers)).record
    train, test = true_outputs(model, layers, x), true_outputs(model, layers, xt)
    for layer in layers:
        want = nc_metrics(train[layer], y, None, None, test[layer], y)
        for key in KEYS:
            assert got[f"{layer}/{key}"] == pytest.approx(want[key], rel=1e-9, abs=1e-12), (layer, key)


def test_the_mlp_batchnorm_output_is_copied_before_the_inplace_relu():
    """The reported case: backbone.5 (BatchNorm1d) of a depth-2 MLP, then ReLU(inplace=True)."""
    torch.manual_seed(0)
    model = build_model(resolve(None, ["model=mlp", "model.width=16", "model.depth=2"]), (1, 8, 8), K).eval()
    assert isinstance(model.backbone[5], nn.BatchNorm1d) and model.backbone[6].inplace
    x = torch.randn(12, 1, 8, 8)
    tap = FeatureTap(model, ["backbone.5"])
    with torch.no_grad():
        h = model(x)[1]
    tap.close()
    assert (tap.features["backbone.5"] < 0).any()  # the BatchNorm's output, not the ReLU's
    assert not torch.equal(tap.features["backbone.5"], h)
