"""Every registered model: forward + backward on a tiny CPU batch, the feature dim it reports, head.fixdim,
parameter groups, `head.kind=none`, and one-line errors for options a model cannot take."""

import pytest
import torch

from nclab.cli import main
from nclab.config import resolve
from nclab.errors import ConfigError
from nclab.losses import Loss
from nclab.measure import Settings, measure
from nclab.models import MODELS, build_model, count_parameters, describe, parameter_groups

# name -> (overrides keeping it small, input shape, default feature dim)
SMALL = {
    "mlp": (["model.width=16", "model.depth=2"], (1, 8, 8), 16),
    "convnet": (["model.width=0.25"], (1, 28, 28), 32),
    "preact_resnet": (["model.width=0.25", "model.embed_dim=128"], (1, 28, 28), 128),
    "resnet18": (["model.width=0.125"], (3, 32, 32), 64),
    "resnet34": (["model.width=0.0625", "model.stem=imagenet"], (3, 32, 32), 32),
    "resnet50": (["model.width=0.0625", "model.stem=imagenet"], (3, 32, 32), 128),
    "wide_resnet50": (["model.width=0.015625", "model.stem=imagenet"], (3, 32, 32), 2048),
    "densenet121": ([], (3, 32, 32), 1024),
    "densenet121_cifar": ([], (3, 32, 32), 512),
    "vit": (["model.width=32", "model.depth=2", "model.heads=2", "model.patch_size=8"], (3, 32, 32), 32),
    "swin": (["model.width=16", "model.heads=2"], (3, 32, 32), 64),
    "swin_cifar": (["model.width=8", "model.depth=[2,2]", "model.heads=[1,2]"], (3, 32, 32), 16),
}


def test_every_built_in_model_is_tested():
    """Models nclab registers itself (tests/test_extension.py adds one of its own; gpt reads token ids:
    tests/models/test_gpt.py)."""
    assert set(SMALL) | {"gpt"} == {
        n for n in MODELS.names() if MODELS.get(n).__module__.startswith("nclab.")
    }


@pytest.mark.parametrize("name", sorted(SMALL))
def test_forward_backward_and_feature_dim(name):
    overrides, shape, dim = SMALL[name]
    torch.manual_seed(0)
    cfg = resolve(None, [f"model={name}", *overrides])
    model = build_model(cfg, shape, 10)
    logits, h = model(torch.randn(2, *shape))
    assert h.shape == (2, dim) and model.feature_dim == dim and logits.shape == (2, 10)
    assert torch.allclose(logits, h @ model.head.weight.T + model.head.bias, atol=1e-5)  # z = W h + b
    logits.square().sum().backward()
    assert all(p.grad is not None for p in model.parameters())


PROJECTED = {
    "densenet121",
    "densenet121_cifar",
    "vit",
    "swin",
    "swin_cifar",
}  # fixdim = a learned d -> K linear map


@pytest.mark.parametrize("name", sorted(SMALL))
def test_fixdim_gives_k_dimensional_features(name):
    overrides, shape, _ = SMALL[name]
    k = 7
    d_fix, n_fix = describe(resolve(None, [f"model={name}", *overrides, "head.fixdim=true"]), shape, k)
    _, n = describe(resolve(None, [f"model={name}", *overrides]), shape, k)
    assert d_fix == k
    if name in PROJECTED:  # backbone + (d K + K) projection + (K K + K) head, against backbone + (d K + K)
        assert n_fix == n + k * k + k
    else:  # the last layer itself emits K channels
        assert n_fix < n


def test_fixdim_forward_on_a_native_and_a_projected_model():
    for name in ("convnet", "vit"):
        overrides, shape, _ = SMALL[name]
        model = build_model(resolve(None, [f"model={name}", *overrides, "head.fixdim=true"]), shape, 5)
        logits, h = model(torch.randn(2, *shape))
        assert h.shape == (2, 5) and logits.shape == (2, 5)


@pytest.mark.parametrize(
    ("overrides", "shape", "fragments"),
    [
        (
            ["model=preact_resnet", "model.embed_dim=2", "head.fixdim=true"],
            (1, 28, 28),
            ["fixdim", "d=2", "K=10"],
        ),
        (["model=preact_resnet", "model.embed_dim=2", "head.fixed=etf"], (1, 28, 28), ["etf", "d=2 < K=10"]),
        (["model=vit", "model.patch_size=5"], (3, 32, 32), ["patch size 5", "32x32", "model.patch_size"]),
        (["model=swin"], (3, 28, 28), ["patch merges", "28x28"]),
        (["model=vit", "model.width=30", "model.heads=4"], (3, 32, 32), ["model.width=30", "model.heads=4"]),
        (["model=densenet121"], (3, 16, 16), ["at least 29x29", "16x16"]),
        (["model=resnet18"], (64,), ["C x H x W", "(64,)"]),
        (["model=mlp", "model.width=2.5"], (64,), ["model.width", "whole number"]),
        (["head.kind=none", "head.fixed=etf"], (64,), ["head.kind=none"]),
    ],
)
def test_incompatible_options_raise_one_config_error(overrides, shape, fragments):
    with pytest.raises(ConfigError) as err:
        build_model(resolve(None, overrides), shape, 10)
    assert "\n" not in str(err.value)
    for fragment in fragments:
        assert fragment in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "n_weight", "n_bias"),
    [([], 1, 1), (["head.bias=false"], 1, 0), (["head.fixed=etf"], 0, 1), (["head.kind=none"], 0, 0)],
)
def test_parameter_groups_partition_the_trainable_parameters(overrides, n_weight, n_bias):
    model = build_model(resolve(None, ["model.width=16", *overrides]), (64,), 10)
    groups = parameter_groups(model)
    assert set(groups) == {"backbone", "weight", "bias"}
    assert (len(groups["weight"]), len(groups["bias"])) == (n_weight, n_bias)
    ids = [id(p) for ps in groups.values() for p in ps]
    assert len(ids) == len(set(ids)) == len([p for p in model.parameters() if p.requires_grad])
    assert sum(p.numel() for p in groups["backbone"]) == count_parameters(model.backbone)
    if n_weight:
        assert groups["weight"][0] is model.head.weight


def test_headless_model_measures_with_w_metrics_null():
    model = build_model(resolve(None, ["model.width=16", "head.kind=none"]), (64,), 3)
    logits, h = model(torch.randn(4, 64))
    assert logits is None and h.shape == (4, 16)

    class FeatureLoss(Loss):
        uses_logits = False

        def sample_loss(self, logits, h, y):
            return h.square().mean(1)

    x, y = torch.randn(60, 64), torch.arange(60) % 3
    out = measure(model, FeatureLoss(3), [(x, y)], [(x, y)], Settings(3)).record
    assert (
        out["nc2_w"] is None and out["nc3"] is None and out["train_acc"] is None and out["test_acc"] is None
    )
    assert out["nc1"] > 0 and out["nc2_h"] is not None and 0 <= out["ncc_acc"] <= 1


def test_headless_training_with_a_logit_loss_is_one_error_line(tmp_path, capsys):
    assert main(["train", f"out={tmp_path / 'runs'}", "head.kind=none", "epochs=1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: head.kind=none") and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_models_command_lists_counts(capsys):
    assert main(["models", "--input-shape", "3,32,32", "--classes", "10"]) == 0
    out = capsys.readouterr().out
    assert "11,173,962" in out and "66,847,050" in out  # resnet18 (cifar stem), wide_resnet50 (width 2)
    assert main(["models", "data=digits", "model=mlp"]) == 0
    assert "152,330" in capsys.readouterr().out  # 64-256-256-256-10 MLP with BatchNorm
    assert main(["models", "model=vit", "--input-shape", "3,30,30"]) == 2
    assert capsys.readouterr().err.startswith("error: model=vit: patch size 4")


def test_models_command_sees_the_rgb32_input(capsys):
    """data.rgb32 makes MNIST 3 x 32 x 32: the 2021 study's MLP (3072 inputs) and ResNet18 counts."""
    mlp = ["models", "data=mnist", "data.rgb32=true", "model=mlp", "model.width=1024", "model.depth=6"]
    assert main(mlp) == 0
    assert "8,417,290" in capsys.readouterr().out
    assert main(["models", "data=mnist", "data.rgb32=true", "model=resnet18", "model.stem=imagenet"]) == 0
    assert "11,181,642" in capsys.readouterr().out
    assert main(["models", "data=mnist", "model=mlp", "model.width=1024", "model.depth=6"]) == 0
    assert "8,417,290" not in capsys.readouterr().out  # 784 inputs without rgb32
