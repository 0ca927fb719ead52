"""The metric table: every key a run or `measure` can write is declared once; lookups, families, flags."""

import pytest
import torch
from torch import nn

from nclab.cli import main
from nclab.errors import NclabError
from nclab.measure import Settings, measure
from nclab.metrics import table
from nclab.runs import load
from tests.test_measure import FeatureLoss, Net, batches, data


def undeclared(keys):
    out = []
    for key in keys:
        try:
            table.metric(key)
        except NclabError:
            out.append(key)
    return out


def test_every_key_of_the_tiny_runs_is_declared(tiny_runs):
    for path in tiny_runs:
        keys = set().union(*(r.keys() for r in load(path).metrics()))
        assert {"score_pos_q05", "bias_mean", "step_loss", "lr", "uniform_acc"} <= keys
        assert undeclared(keys) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        ["loss=center", "data.val_fraction=0.1"],
        ["loss=standalone_center", "head.kind=none"],
    ],
)
def test_every_key_of_center_and_headless_runs_is_declared(tmp_path, overrides):
    common = [f"out={tmp_path}", "name=r", "epochs=1", "model.width=16", "model.depth=1"]
    common += ["train.figures=false", "--quiet"]
    assert main(["train", *overrides, *common]) == 0
    record = load(tmp_path / "r").metrics()[-1]
    assert {"center_acc", "test_center_acc"} <= set(record)
    assert undeclared(record) == []


def test_every_multilabel_key_is_declared():
    torch.manual_seed(1)
    x, y = data(n=60)
    hot = nn.functional.one_hot(y, 3).double()
    hot[torch.arange(0, 60, 4), (y[::4] + 1) % 3] = 1
    record = measure(
        Net(k=3), FeatureLoss(3), batches(x, hot), batches(x, hot), Settings(3, multilabel=True)
    ).record
    assert {"tagwise_angle", "iou", "test_iou"} <= set(record)
    assert undeclared(record) == []


def test_tags_families_and_flags():
    assert table.tag("nc1") == "nc/nc1" and table.tag("test_nc1") == "nc/test_nc1"
    assert table.tag("distinctiveness") == "geometry/distinctiveness" and table.tag("lr") == "optim/lr"
    assert table.tag("test_ncc_acc") == "accuracy/test_ncc_acc" and table.tag("step_loss") == "loss/step_loss"
    assert table.tag("score_pos_q05") == "scores/score_pos_q05" and table.tag("bias_std") == "scores/bias_std"
    assert table.metric("bias_sign").key == "bias_sign"  # the exact entry wins over the bias_* family
    assert table.metric("nc1").log and not table.metric("nc2_h").log
    assert table.keys("progress") == ["train_loss", "train_acc", "test_acc", "nc1"]
    assert {"nc1", "cdnv", "test_nc1"} <= set(table.keys("log")) and "score_pos_*" not in table.keys("log")
    assert "nc1" in table.keys("summary") and "step_loss" not in table.keys("summary")


def test_undeclared_key_is_one_error_naming_the_fix():
    with pytest.raises(NclabError, match=r"'nope' is not declared.*register_metric"):
        table.tag("nope")


def test_register_adds_a_key_once(monkeypatch):
    monkeypatch.setattr(table, "METRICS", dict(table.METRICS))
    entry = table.register_metric("margin_*", "geometry", "logit margins", "a paper", summary=True)
    assert table.metric("margin_mean") is entry and table.tag("margin_q05") == "geometry/margin_q05"
    assert "margin_*" not in table.keys("summary")  # families are never columns by themselves
    table.register_metric("margin", "geometry", "mean logit margin", curve=True)
    assert table.keys("curve")[-1] == "margin"
    with pytest.raises(ValueError, match="declared twice"):
        table.register_metric("margin", "nc", "again")


def test_every_key_of_a_measurement_with_layers_and_ood_is_declared():
    x, y = data()
    record = measure(
        Net(), FeatureLoss(3), batches(x, y), batches(x, y), Settings(3, layers=["body"]), batches(x, y)
    ).record
    assert {"body/nc1", "body/test_ncc_acc", "nc5", "nc1_tr", "cdnv4", "test_nc4_ncc"} <= set(record)
    assert undeclared(record) == []
    assert table.tag("body/nc1") == "depth/body/nc1" and table.metric("body/nc1").log
