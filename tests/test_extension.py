"""Proof that a loss, a model, a dataset and a metric are each added in one file outside src/: this module
registers all four (each with an option of its own; the loss also with a learned parameter and a metric it
reports; the metric with per-epoch state: its class and its table entry), trains 2-epoch digits runs with
them, and finds them in metrics.jsonl, `nclab compare` and `nclab options`."""

import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from nclab.cli import main
from nclab.config import DataConfig, LossConfig, ModelConfig
from nclab.data import DATASETS, DatasetInfo, Splits, register
from nclab.losses import LOSSES, Loss
from nclab.metrics.epoch import EpochMetric
from nclab.metrics.nc import ClassStats
from nclab.metrics.table import METRICS, register_metric
from nclab.models import MODELS
from nclab.parts import build_parts
from nclab.runs import load

# a metric a loss reports: declared once, then any loss (or other hook) may report it
register_metric("temperature", "optim", "the learned temperature t", "this test")
register_metric("test_temperature", "optim", "the learned temperature t (test split)", "this test")


# a metric with per-epoch state: its class and its table entry (in-tree, the entry names "module:Class")
class FeatureNorm(EpochMetric):
    """mean ||h_i|| of a split, summed batch by batch on the features' device"""

    def __init__(self, num_classes: int) -> None:
        super().__init__(num_classes)
        self.sums: Tensor | None = None  # (sum of norms, count)

    def update(self, features: Tensor, labels: Tensor, logits: Tensor | None) -> None:
        norms = features.detach().double().norm(dim=1)
        if self.sums is None:
            self.sums = torch.zeros(2, dtype=torch.float64, device=norms.device)
        self.sums += torch.stack([norms.sum(), torch.tensor(float(len(norms)), device=norms.device)])

    def result(self, stats: ClassStats) -> dict[str, float | None]:
        return {"feature_norm": (self.sums[0] / self.sums[1]).item()}


@pytest.fixture(scope="module")
def feature_norm():
    """The table entry (scoped to this module's runs: every measured epoch of the session would report it)."""
    register_metric(
        "feature_norm", "geometry", "mean ||h_i|| of a split", "this test", summary=True,
        state=f"{__name__}:FeatureNorm",
    )  # fmt: skip
    register_metric("test_feature_norm", "geometry", "mean ||h_i|| of the test split", "this test")
    yield
    for key in ("feature_norm", "test_feature_norm"):
        METRICS.pop(key)


# a loss with its own option and a learned parameter in its own optimizer group
class TemperedOptions(LossConfig):
    """cross-entropy of t z with a learned temperature t"""

    init_temperature: float = Field(1.0, gt=0, description="t at the start of training")


@LOSSES.register("tempered_ce", TemperedOptions)
def tempered_ce(cfg: TemperedOptions, num_classes: int, feature_dim: int) -> Loss:
    return TemperedCE(num_classes, cfg.init_temperature, reduction=cfg.reduction)


class TemperedCE(Loss):
    extra_metrics = ("temperature",)

    def __init__(self, num_classes: int, init_temperature: float, **kw) -> None:
        super().__init__(num_classes, **kw)
        self.log_t = nn.Parameter(torch.tensor(math.log(init_temperature)))

    def sample_loss(self, logits: Tensor, features: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(self.log_t.exp() * logits, targets, reduction="none")

    def param_groups(self, lr: float) -> list[dict]:
        return [{"name": "temperature", "params": [self.log_t], "lr": lr, "weight_decay": 0.0}]

    def metrics(self, features: Tensor, labels: Tensor) -> dict[str, float]:
        return {"temperature": self.log_t.exp().item()}


# a model with its own option
class TwoLayerOptions(ModelConfig):
    """Linear -> tanh -> Linear -> tanh"""

    hidden: int = Field(64, ge=1, description="units of both layers")


@MODELS.register("two_layer", TwoLayerOptions)
def two_layer(cfg: TwoLayerOptions, input_shape: tuple[int, ...], out_dim: int | None = None):
    d = out_dim or cfg.hidden
    net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), cfg.hidden), nn.Tanh())
    return nn.Sequential(net, nn.Linear(cfg.hidden, d), nn.Tanh()), d


# a dataset with its own option
class NoisyDigitsOptions(DataConfig):
    """digits with Gaussian pixel noise"""

    noise: float = Field(0.5, ge=0, description="std of the noise added to the standardised pixels")


@register("noisy_digits", DatasetInfo("digits + noise", 1437, 360, (64,), 10), NoisyDigitsOptions)
def noisy_digits(cfg: NoisyDigitsOptions, seed: int) -> Splits:
    s = DATASETS.get("digits")(cfg, seed)
    g = torch.Generator().manual_seed(seed)
    s.train_x = s.train_x + cfg.noise * torch.randn(s.train_x.shape, generator=g)
    return s


@pytest.fixture(scope="module")
def runs(tmp_path_factory, feature_norm):
    out = tmp_path_factory.mktemp("ext")
    common = [f"out={out}", "epochs=2", "train.figures=false", "--quiet"]
    settings = {
        "loss": ["loss=tempered_ce", "loss.init_temperature=2"],
        "model": ["model=two_layer", "model.hidden=32"],
        "data": ["data=noisy_digits", "data.noise=0.3"],
    }
    for name, overrides in settings.items():
        assert main(["train", f"name={name}", *overrides, *common]) == 0
    return {name: load(out / name) for name in settings}


@pytest.mark.slow
def test_each_component_trains_and_reaches_metrics_jsonl(runs):
    for run in runs.values():
        assert run.status()["state"] == "finished" and run.metrics()[-1]["test_acc"] > 0.5
    loss_run = runs["loss"].metrics()[-1]
    cfg = runs["loss"].config()
    assert cfg.loss.init_temperature == 2.0
    t = runs["loss"].load_checkpoint(2)["loss.log_t"].exp().item()
    assert t != pytest.approx(2.0)  # the temperature was learned
    assert loss_run["temperature"] == pytest.approx(t) and loss_run["test_temperature"] == pytest.approx(t)


@pytest.mark.slow
def test_a_metric_with_per_epoch_state_reports_each_split(runs):
    run = runs["model"]
    parts = build_parts(run.config())
    run.restore(2, parts.model, parts.loss_fn)
    parts.model.eval()
    for split, batches in (("", parts.measure_train), ("test_", parts.measure_test)):
        with torch.no_grad():
            h = torch.cat([parts.model(x)[1] for x, _ in batches]).double()
        want = h.norm(dim=1).mean().item()
        assert run.metrics()[-1][f"{split}feature_norm"] == pytest.approx(want, rel=1e-6)
    assert runs["model"].config().model.hidden == 32 and runs["data"].config().data.noise == 0.3


@pytest.mark.slow
def test_compare_shows_the_options_and_the_metric(runs, capsys):
    assert main(["compare", *(str(r.path) for r in runs.values()), "--format", "csv"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    for column in ["loss.init_temperature", "model.hidden", "data.noise", "feature_norm"]:
        assert column in header.split(",")
    assert len(rows) == 3


@pytest.mark.parametrize(
    ("section", "name", "key"),
    [
        ("loss", "tempered_ce", "init_temperature"),
        ("model", "two_layer", "hidden"),
        ("data", "noisy_digits", "noise"),
    ],
)
def test_option_listing_and_validation(capsys, section, name, key, tmp_path):
    assert main(["options", section, name]) == 0
    out = capsys.readouterr().out
    assert f"{section}.{key}" in out and name in out
    assert main(["options", section]) == 0
    assert name in capsys.readouterr().out
    # another component does not take the option: one error line naming what it takes
    assert main(["train", f"{section}.{key}=1", f"out={tmp_path}", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{key} is an option of {name}" in err
