"""Optimizers, parameter-group decays, L-BFGS and the learning-rate sequence of every schedule."""

import math

import pytest
import torch
from torch import nn

from nclab.config import OptimConfig, resolve
from nclab.errors import ConfigError
from nclab.losses import build_loss
from nclab.models import build_model, parameter_groups
from nclab.optim import LBFGS, build_optimizer, build_scheduler, param_groups, step_scheduler


def lrs(cfg: OptimConfig, epochs: int, records=None) -> list[float]:
    """The lr each epoch trains at, stepping the scheduler after each epoch as train.py does."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_scheduler(cfg, opt, epochs)
    out = []
    for e in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        step_scheduler(sched, cfg, records[e] if records else {})
    return out


def test_step_schedule():
    assert lrs(OptimConfig(lr=1.0, schedule="step", step_size=2, gamma=0.5), 5) == [1, 1, 0.5, 0.5, 0.25]


def test_multistep_by_fractions_of_the_epochs():
    # 2022 study: decays after 3/7 and 5/7 of E; E = 7 gives milestones after epochs 3 and 5
    got = lrs(OptimConfig(lr=1.0, schedule="multistep", gamma=0.1), 7)
    assert got == pytest.approx([1, 1, 1, 0.1, 0.1, 0.01, 0.01])
    got = lrs(OptimConfig(lr=1.0, schedule="multistep", gamma=0.1), 200)
    assert got[84] == 1 and got[85] == pytest.approx(0.1) and got[142] == pytest.approx(0.01)


@pytest.mark.parametrize(("epochs", "expected"), [(1, [1]), (2, [1, 0.01]), (3, [1, 0.1, 0.01])])
def test_multistep_never_decays_before_the_second_epoch(epochs, expected):
    # floor(3/7 E) = floor(5/7 E) = 0 or 1 for E <= 2: the first epoch still trains at the initial lr
    assert lrs(OptimConfig(lr=1.0, schedule="multistep", gamma=0.1), epochs) == pytest.approx(expected)


def test_cosine_schedule():
    cfg = OptimConfig(lr=2.0, schedule="cosine", min_lr_factor=0.1)
    expected = [2 * (0.1 + 0.9 * (1 + math.cos(math.pi * t / 4)) / 2) for t in range(4)]
    assert lrs(cfg, 4) == pytest.approx(expected)


def test_cosine_with_warmup():
    cfg = OptimConfig(lr=1.0, schedule="cosine", warmup_epochs=2)
    expected = [0.5, 1.0] + [(1 + math.cos(math.pi * s / 4)) / 2 for s in range(4)]
    assert lrs(cfg, 6) == pytest.approx(expected)


def test_none_schedule():
    assert lrs(OptimConfig(lr=0.3, schedule="none"), 3) == [0.3, 0.3, 0.3]


def test_plateau_on_accuracy():
    cfg = OptimConfig(lr=1.0, schedule="plateau", plateau_metric="test_acc", patience=1, gamma=0.5)
    accs = [0.5, 0.6, 0.6, 0.6, None, 0.6, 0.7]  # None: an unmeasured epoch, which does not count
    got = lrs(cfg, 7, [{"test_acc": a} for a in accs])
    assert got == [1, 1, 1, 1, 0.5, 0.5, 0.5]


def test_warmup_with_plateau_is_refused():
    with pytest.raises(ConfigError, match="warmup_epochs"):
        resolve(None, ["optim.schedule=plateau", "optim.warmup_epochs=3"])


def test_nesterov_needs_momentum():
    with pytest.raises(ConfigError, match="momentum"):
        resolve(None, ["optim.nesterov=true", "optim.momentum=0"])


def digits_model(overrides=()):
    cfg = resolve(None, ["model.width=8", "model.depth=1", *overrides])
    torch.manual_seed(0)
    model = build_model(cfg, (64,), 10)
    return cfg, model, build_loss(cfg.loss, 10, 8)


def test_parameter_groups_split_backbone_weight_bias():
    _, model, _ = digits_model()
    groups = parameter_groups(model)
    assert groups["weight"] == [model.head.weight] and groups["bias"] == [model.head.bias]
    backbone = {id(p) for p in groups["backbone"]}
    assert backbone == {id(p) for p in model.backbone.parameters()}


@pytest.mark.parametrize("optim", ["sgd", "adam"])
def test_group_decays_reach_the_right_parameters(optim):
    """With zero gradients a step only applies the decay: p <- (1 - lr wd) p for each group's wd."""
    cfg, model, loss_fn = digits_model([
        f"optim={optim}", "optim.lr=0.1", "optim.weight_decay=0.1", "optim.weight_decay_weight=0.2",
        "optim.weight_decay_bias=0", "loss=center", *(["optim.momentum=0"] if optim == "sgd" else []),
    ])  # fmt: skip
    groups = param_groups(cfg, model, loss_fn)
    assert [g["name"] for g in groups] == ["backbone", "weight", "bias", "centers"]
    assert [g["weight_decay"] for g in groups] == [0.1, 0.2, 0.0, 0.0]
    optimizer = build_optimizer(cfg.optim, groups)
    before = {id(p): p.detach().clone() for g in groups for p in g["params"]}
    for g in groups:
        for p in g["params"]:
            p.grad = torch.zeros_like(p)
    optimizer.step()
    for g in groups:
        for p in g["params"]:
            if optim == "sgd":  # SGD: p - lr wd p exactly
                assert torch.allclose(p, before[id(p)] * (1 - 0.1 * g["weight_decay"]))
            elif before[id(p)].any():  # Adam with coupled L2: nonzero decay moves p, zero decay leaves it
                assert torch.equal(p, before[id(p)]) == (g["weight_decay"] == 0)


def test_adamw_decay_is_decoupled():
    cfg, model, loss_fn = digits_model(["optim=adamw", "optim.lr=0.1", "optim.weight_decay=0.5"])
    optimizer = build_optimizer(cfg.optim, param_groups(cfg, model, loss_fn))
    w = model.head.weight
    before = w.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    assert torch.allclose(w, before * (1 - 0.1 * 0.5))


def test_center_lr_and_lr_scaling():
    cfg, model, loss_fn = digits_model([
        "loss=standalone_center", "loss.center_lr=0.5", "optim.lr=0.1", "optim.scale_lr=true",
        "train.batch_size=512",
    ])  # fmt: skip
    lr = {g["name"]: g["lr"] for g in param_groups(cfg, model, loss_fn)}
    assert lr == {"backbone": 0.4, "weight": 0.4, "bias": 0.4, "centers": 0.5}


def test_lbfgs_lowers_the_loss_and_adds_the_decay_penalty():
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = (x @ torch.randn(5, 3)).argmax(1)  # a linear teacher: separable, so the loss can fall far
    model = nn.Linear(5, 3)
    groups = [{"name": "all", "params": list(model.parameters()), "lr": 1.0, "weight_decay": 0.01}]
    optimizer = build_optimizer(OptimConfig(name="lbfgs"), groups)
    assert isinstance(optimizer, LBFGS)
    expected = 0.005 * sum(p.square().sum().item() for p in model.parameters())
    assert float(optimizer.penalty()) == pytest.approx(expected, rel=1e-6)

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y) + optimizer.penalty()
        loss.backward()
        return loss

    start = float(closure())
    for _ in range(3):
        optimizer.step(closure)
    assert float(closure()) < 0.3 * start


def test_lbfgs_refuses_two_learning_rates():
    cfg, model, loss_fn = digits_model(["optim=lbfgs", "loss=center", "loss.center_lr=0.5"])
    with pytest.raises(ConfigError, match="center_lr"):
        build_optimizer(cfg.optim, param_groups(cfg, model, loss_fn))
