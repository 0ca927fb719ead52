"""nclab.step: precision, channels_last, compile and the CUDA-graph step change the speed, not the science."""

import json

import pytest
import torch

from nclab.cli import main
from nclab.config import LossConfig, TrainConfig, resolve
from nclab.data.loader import DeviceLoader
from nclab.errors import ConfigError
from nclab.losses import build_loss
from nclab.models import build_model
from nclab.optim import build_optimizer, param_groups
from nclab.step import CapturedStep, TrainStep, build_step, capture_blocker, prepare_model


def _final(out, name: str, *overrides: str, epochs: int = 8) -> dict:
    common = [f"out={out}", f"name={name}", f"epochs={epochs}", f"measure.every={epochs}", "model.width=64"]
    common += ["model.depth=2", "train.figures=false"]
    assert main(["train", *common, "train.device=cpu", *overrides, "--quiet"]) == 0
    return json.loads((out / name / "metrics.jsonl").read_text().splitlines()[-1])


@pytest.mark.slow
def test_bf16_reaches_the_fp32_accuracy_and_nc1(tmp_path):
    """A deterministic digits run in bf16 autocast: same final train accuracy as fp32, nc1 within 10%."""
    fp32 = _final(tmp_path, "fp32")
    bf16 = _final(tmp_path, "bf16", "train.precision=bf16")
    assert fp32["train_acc"] > 0.95
    assert bf16["train_acc"] == pytest.approx(fp32["train_acc"], abs=0.01)
    assert bf16["nc1"] == pytest.approx(fp32["nc1"], rel=0.10)
    assert bf16["nc1"] != fp32["nc1"]  # the switch took effect


@pytest.mark.slow
def test_fp16_trains_with_a_gradient_scaler(tmp_path):
    fp16 = _final(tmp_path, "fp16", "train.precision=fp16", epochs=3)
    assert fp16["train_acc"] > 0.8


def _setup(**train):
    cfg = resolve(overrides=["model=convnet", "data=gaussian", "train.device=cpu", "train.batch_size=8"])
    model = build_model(cfg, (3, 8, 8), 3)
    loss_fn = build_loss(LossConfig(), 3, model.feature_dim)
    optimizer = build_optimizer(cfg.optim, param_groups(cfg, model, loss_fn))
    return model, loss_fn, optimizer, TrainConfig(**train)


def test_channels_last_loader_and_model_give_the_eager_numbers():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    y = torch.arange(16) % 3
    norm = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)
    plain = DeviceLoader(x, y, 8, torch.device("cpu"), *norm)
    last = DeviceLoader(x, y, 8, torch.device("cpu"), *norm, channels_last=True)
    (xa, _), (xb, _) = next(iter(plain)), next(iter(last))
    assert xb.is_contiguous(memory_format=torch.channels_last) and not xa.is_contiguous(
        memory_format=torch.channels_last
    )
    torch.testing.assert_close(xa, xb)
    losses = []
    for layout, batches in ((False, plain), (True, last)):
        torch.manual_seed(1)
        model, loss_fn, optimizer, cfg = _setup(channels_last=layout)
        prepare_model(model, cfg)
        step = TrainStep(model, loss_fn, optimizer, cfg)
        losses.append([float(step(xb, yb)[0]) for _ in range(3) for xb, yb in batches])
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_compile_keeps_parameter_names_and_outputs(monkeypatch):
    """Inductor on the CPU, where a cold first compile is mostly its one-off checks of the CPU's vector
    instructions: a small MLP (few kernels) and no precompiled header, which pays off only over many kernels
    (the test on a fresh machine: ~26 cpu-s, against ~34 with the convnet and the header)."""
    import torch._inductor.config

    monkeypatch.setattr(torch._inductor.config, "cpp_cache_precompile_headers", False)
    torch.manual_seed(0)
    cfg = resolve(overrides=["model=mlp", "model.width=16", "model.depth=1", "data=gaussian"])
    model = build_model(cfg, (3, 8, 8), 3)
    names = list(model.state_dict())
    x = torch.randn(4, 3, 8, 8)
    eager = model(x)[0].detach()
    assert prepare_model(model, TrainConfig(compile="default")) is model
    assert model._compiled_call_impl is not None  # nn.Module.compile: compiled in place
    assert list(model.state_dict()) == names  # checkpoints load into uncompiled models
    torch.testing.assert_close(model(x)[0].detach(), eager, rtol=1e-4, atol=1e-5)


def test_compile_option_takes_yaml_booleans():
    assert TrainConfig(compile=False).compile == "false"
    assert TrainConfig(compile=True).compile == "default"
    with pytest.raises(ConfigError, match="compile"):
        resolve(overrides=["train.compile=fast"])


def test_cuda_graph_without_cuda_warns_and_trains_eagerly(capsys):
    model, loss_fn, optimizer, cfg = _setup(cuda_graph=True)
    step = build_step(model, loss_fn, optimizer, cfg)
    assert type(step) is TrainStep
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: train.cuda_graph needs a CUDA device")


@pytest.mark.parametrize(
    ("optim", "train", "reason"),
    [
        ("lbfgs", {}, "cannot capture LBFGS"),
        ("sgd", {"precision": "fp16"}, "cannot capture fp16's gradient scaler"),
        ("sgd", {}, "needs a fused or capturable optimizer"),  # CPU parameters: torch's foreach SGD
    ],
)
def test_what_cannot_be_captured_is_named(optim, train, reason):
    model, loss_fn, _, _ = _setup()
    cfg = resolve(overrides=[f"optim={optim}"])
    optimizer = build_optimizer(cfg.optim, param_groups(cfg, model, loss_fn))
    blocker = capture_blocker(torch.device("cuda"), optimizer, TrainConfig(cuda_graph=True, **train))
    assert blocker is not None and blocker.startswith(reason)


def _graph_vs_eager(precision: str, clip: float | None, steps: int = 20):
    """Per-step losses of the eager step and the captured step from the same initial state and batches,
    including a smaller tail batch every 5 steps and an lr change half-way."""
    device = torch.device("cuda")
    gen = torch.Generator().manual_seed(0)
    batches = []
    for i in range(steps):
        n = 5 if i % 5 == 4 else 16
        batches.append((torch.randn(n, 3, 8, 8, generator=gen).to(device), (torch.arange(n) % 3).to(device)))
    out = []
    for graph in (False, True):
        torch.manual_seed(0)
        cfg = resolve(overrides=["model=convnet", "train.device=cuda", "optim.momentum=0.9"])
        model = build_model(cfg, (3, 8, 8), 3).to(device)
        loss_fn = build_loss(LossConfig(), 3, model.feature_dim).to(device)
        optimizer = build_optimizer(cfg.optim, param_groups(cfg, model, loss_fn))
        tcfg = TrainConfig(precision=precision, clip_grad_norm=clip, cuda_graph=graph)
        step = build_step(model, loss_fn, optimizer, tcfg)
        assert isinstance(step, CapturedStep) == graph
        losses = []
        for i, (x, y) in enumerate(batches):
            if i == steps // 2:
                for g in optimizer.param_groups:
                    g["lr"] = 0.1 * float(g["lr"])  # what a scheduler does between epochs
            losses.append(float(step(x, y)[0]))
        out.append((losses, [p.detach().clone() for p in model.parameters()]))
    return out


@pytest.mark.cuda
@pytest.mark.parametrize(("precision", "clip"), [("fp32", None), ("bf16", 1.0)])
def test_cuda_graph_step_gives_the_eager_losses(precision, clip):
    (eager, eager_params), (graph, graph_params) = _graph_vs_eager(precision, clip)
    tol = 1e-4 if precision == "fp32" else 2e-2
    torch.testing.assert_close(graph, eager, rtol=tol, atol=tol)
    for a, b in zip(graph_params, eager_params, strict=True):
        torch.testing.assert_close(a, b, rtol=tol * 10, atol=tol * 10)


@pytest.mark.cuda
def test_cuda_graph_run_end_to_end(tmp_path):
    common = ["data=gaussian", "epochs=3", "train.device=cuda", "train.batch_size=48", "--quiet"]
    assert main(["train", f"out={tmp_path}", "name=e", *common]) == 0
    assert main(["train", f"out={tmp_path}", "name=g", "train.cuda_graph=true", *common]) == 0
    last = [json.loads((tmp_path / n / "metrics.jsonl").read_text().splitlines()[-1]) for n in "eg"]
    assert last[1]["train_acc"] == pytest.approx(last[0]["train_acc"], abs=0.02)
    assert last[1]["nc1"] == pytest.approx(last[0]["nc1"], rel=0.05)
