"""measure_model: any model, features by forward hook, equal to nc_metrics on the same features."""

import pytest
import torch
from torch import nn

from nclab.errors import ConfigError
from nclab.metrics import measure_model, nc_metrics
from nclab.metrics.hooks import FeatureTap, pooled


class Net(nn.Module):
    """A user's model: a conv trunk, global pooling, a classifier named `fc`; returns logits only."""

    def __init__(self, k=4):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Conv2d(6, 8, 3), nn.ReLU())
        self.fc = nn.Linear(8, k)

    def forward(self, x):
        return self.fc(self.trunk(x).mean((2, 3)))


def data(n=48, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    x = torch.randn(n, 1, 8, 8, generator=g) + y[:, None, None, None].float()
    return [(x[i : i + 16], y[i : i + 16]) for i in range(0, n, 16)]


def features(net, batches):
    h = torch.cat([net.trunk(x).mean((2, 3)) for x, _ in batches]).detach()
    return h, torch.cat([y for _, y in batches])


def test_measure_model_equals_nc_metrics_on_the_hooked_features():
    torch.manual_seed(0)
    net = Net()
    train, test = data(), data(seed=1)
    got = measure_model(net, train, layer="fc", test_loader=test)
    h, y = features(net, train)
    ht, yt = features(net, test)
    want = nc_metrics(h, y, net.fc.weight, net.fc.bias, ht, yt)
    assert set(want) <= set(got)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert net.training  # the model's mode is restored


def test_classifier_choices_and_feature_only_measurement():
    torch.manual_seed(0)
    net = Net()
    train = data()
    w, b = torch.randn(4, 8), torch.zeros(4)
    given = measure_model(net, train, classifier=(w, b))
    h, y = features(net, train)
    assert given["nc2_w"] == pytest.approx(nc_metrics(h, y, w, b)["nc2_w"], rel=1e-12)
    bare = measure_model(net, train, classifier=None, num_classes=4)
    assert bare["nc2_w"] is None and bare["nc1"] == pytest.approx(given["nc1"], rel=1e-12)
    with pytest.raises(ConfigError, match="num_classes"):
        measure_model(net, train, classifier=None)
    with pytest.raises(ConfigError, match="no module named head"):
        measure_model(net, train, layer="head")


def test_half_precision_features_accumulate_in_float64():
    torch.manual_seed(0)
    net = Net().to(torch.bfloat16)
    train = [(x.to(torch.bfloat16), y) for x, y in data()]
    got = measure_model(net, train)
    h, y = features(net, train)
    assert h.dtype == torch.bfloat16
    want = nc_metrics(h.double(), y, net.fc.weight.double(), net.fc.bias.double())
    for key in ["nc1", "nc2_h", "nc3", "cdnv", "ncc_acc", "train_acc"]:
        assert got[key] == pytest.approx(want[key], rel=1e-9), key


def test_layers_and_ood():
    torch.manual_seed(0)
    net = Net()
    train, ood = data(), data(seed=3)
    got = measure_model(net, train, layers=["trunk.1"], ood_loader=ood)
    h1 = torch.cat([net.trunk[:2](x).mean((2, 3)) for x, _ in train]).detach()
    y = torch.cat([y for _, y in train])
    assert got["trunk.1/nc1"] == pytest.approx(nc_metrics(h1, y, None, num_classes=4)["nc1"], rel=1e-9)
    h, _ = features(net, train)
    h = h.double()
    mu = torch.stack([h[y == c].mean(0) for c in range(4)])
    o = features(net, ood)[0].double().mean(0)
    want = (mu @ o).abs() / (mu.norm(dim=1) * o.norm())
    assert got["nc5"] == pytest.approx(want.mean().item(), rel=1e-9)


def test_pooling_of_layer_outputs():
    assert pooled(torch.ones(2, 3, 4, 5)).shape == (2, 3)
    assert pooled(torch.arange(12.0).view(1, 3, 4)).tolist() == [[4.0, 5.0, 6.0, 7.0]]
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    tap = FeatureTap(model, ["1"], inputs=True)
    x = torch.randn(5, 3)
    model(x)
    assert torch.equal(tap.features["1"], model[0](x))  # the input of module "1"
    tap.close()
    model(2 * x)
    assert torch.equal(tap.features["1"], model[0](x))  # no hook after close
