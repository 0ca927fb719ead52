"""`nclab measure RUN_DIR`: the in-training measurement (measure.py) re-run on saved checkpoints.

Data, model and loss are rebuilt from the run's config.yaml with the same builders and evaluation loaders
as training, so the numbers equal the in-training ones (same batches, eval mode, float64 statistics).
Records go to measure.jsonl (one per epoch, replacing earlier records of the same epoch; the file is
rewritten atomically after every epoch, so a failure keeps what was measured before it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from nclab.config import RunConfig, kind_of
from nclab.data import load_dataset
from nclab.data.loader import loaders
from nclab.errors import ConfigError, CorruptFile, NclabError, RunError, warn
from nclab.measure import Measurement, accuracy, measure, settings
from nclab.metrics import measure_model
from nclab.metrics.epoch import Head, measure_epoch
from nclab.metrics.hooks import FeatureTap, HookedInput
from nclab.metrics.nc import linear_logits
from nclab.parts import build_parts, resolve_device
from nclab.runs import Run

__all__ = ["SPLITS", "load_hf", "load_timm", "measure_checkpoints", "measure_pretrained", "measure_run"]

SPLITS = ("train", "test")


def _check_splits(splits: Sequence[str]) -> None:
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or not splits:
        raise ConfigError(f"--split {','.join(splits)}: choose from {','.join(SPLITS)}")


def measure_checkpoints(
    run: Run, epochs: Sequence[int] | None = None, splits: Sequence[str] = SPLITS, features: bool = False
) -> Iterator[tuple[int, Measurement]]:
    """Yield (epoch, Measurement) for each requested checkpoint (all saved ones by default), in order.

    `features=True` also keeps the per-class feature subsample of `measure.features_per_class`.
    """
    _check_splits(splits)
    cfg = run.config()
    if not kind_of(cfg).measurable:
        raise RunError(
            f"{run.path} is an `nclab {cfg.kind}` run: metrics.jsonl is final, there is no model to measure"
        )
    saved = run.checkpoints()
    epochs = sorted(set(epochs)) if epochs else sorted(saved)
    if not epochs:
        raise RunError(f"{run.path} has no checkpoints; train with train.save_every=N to save some")
    missing = [e for e in epochs if e not in saved]
    if missing:
        raise RunError(
            f"no checkpoint for epochs {missing} in {run.path}/checkpoints; saved: {sorted(saved)}"
        )
    parts = build_parts(cfg, run.labels())
    data, model, loss_fn, k = parts.splits, parts.model, parts.loss_fn, parts.splits.num_classes
    train_batches, test_batches = parts.measure_train, parts.measure_test
    val = parts.val if "train" in splits else None
    for epoch in epochs:
        try:
            run.restore(epoch, model, loss_fn)
        except CorruptFile as exc:
            warn(f"{exc}; skipped")
            continue
        measured = measure(
            model,
            loss_fn,
            train_batches if "train" in splits else None,
            test_batches if "test" in splits else None,
            settings(cfg.measure, k, data.multilabel, features, data),
            parts.ood,
        )
        if val is not None:
            measured.record["val_acc"] = accuracy(model, loss_fn, val)
        yield epoch, measured


@torch.no_grad()
def measure_run(run: Run, epochs: Sequence[int] | None = None, splits: Sequence[str] = SPLITS) -> list[int]:
    """Measure checkpoints into measure.jsonl (and the epochs' scores/ and classes/); returns the epochs
    measured."""
    records = {r["epoch"]: r for r in run.read_jsonl("measure.jsonl")}
    done = []
    for epoch, measured in measure_checkpoints(run, epochs, splits):
        records[epoch] = {"epoch": epoch} | measured.record
        run.write_jsonl("measure.jsonl", [records[e] for e in sorted(records)])
        run.save_measured(epoch, measured.arrays)
        done.append(epoch)
    if not done:
        raise RunError(f"no checkpoint of {run.path} could be read (see the warnings above)")
    return done


def _cached_weights(name: str, cfg: dict) -> Path | None:
    """A pretrained file of timm model `name` already on disk: the Hugging Face hub cache (timm >= 0.9) or
    torch hub's checkpoints directory (older timm URLs). Never downloads."""
    from huggingface_hub import try_to_load_from_cache

    hub_id = cfg.get("hf_hub_id")
    for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
        found = try_to_load_from_cache(hub_id, filename) if hub_id else None
        if isinstance(found, str):
            return Path(found)
    url = cfg.get("url")
    if url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
        if path.is_file():
            return path
    return None


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def load_timm(spec: str, weights: Path | None, in_chans: int) -> tuple[nn.Module, str, int | None]:
    """timm model `timm:NAME` with weights from `weights` or the local cache: (model, classifier module name,
    rows of the loaded classifier or None). One ConfigError line when the name is unknown or no weights are
    on disk (nclab never downloads them)."""
    import timm

    name = spec.removeprefix("timm:")
    if not spec.startswith("timm:") or not timm.is_model(name):
        raise ConfigError(f"--model {spec}: write timm:NAME with a timm model name (e.g. timm:resnet18)")
    pretrained_cfg = timm.get_pretrained_cfg(name)
    cfg = pretrained_cfg.to_dict() if pretrained_cfg is not None else {}
    path = weights or _cached_weights(name, cfg)
    if path is None:
        raise NclabError(
            f"no weights for timm:{name} on this machine and nclab does not download them (offline); pass "
            "--weights FILE, or fetch them once online with timm.create_model(name, pretrained=True)"
        )
    if not path.is_file():
        raise ConfigError(f"--weights {path}: no such file")
    classifier = cfg.get("classifier") or "fc"
    classifier = classifier[0] if isinstance(classifier, list | tuple) else classifier
    head = _read_state(path).get(f"{classifier}.weight")
    rows = None if head is None else int(head.shape[0])
    kwargs = {"num_classes": rows} if rows else {}
    try:
        model = timm.create_model(
            name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, in_chans=in_chans, **kwargs
        )
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"--weights {path} does not fit timm:{name} ({first})") from None
    return model, classifier, rows


@torch.no_grad()
def measure_pretrained(
    cfg: RunConfig, spec: str, weights: Path | None, layer: str | None, splits: Sequence[str] = SPLITS
) -> tuple[dict[str, float | None], str]:
    """`nclab measure --model timm:NAME` (`hf:DIR`: `measure_hf`): every metric of the model on the configured
    data's un-augmented splits (h = the input of `layer`, default the classifier). The classifier enters the W
    metrics only when its rows equal the data's K; otherwise they are null and the returned note says why."""
    _check_splits(splits)
    if "train" not in splits:
        raise ConfigError("--model needs the train split (its class means); use --split train or train,test")
    if spec.startswith("hf:"):
        return measure_hf(cfg, spec, splits), ""
    data = load_dataset(cfg.data, cfg.seed)
    if len(data.input_shape) != 3:
        raise ConfigError(
            f"--model {spec} needs image data; data={cfg.data.name} has shape {data.input_shape}"
        )
    device = resolve_device(cfg.train.device)
    model, head, rows = load_timm(spec, weights, data.input_shape[0])
    model.to(device)
    k = data.num_classes
    note = "" if rows == k else f"classifier has {rows} outputs, the data {k} classes: W metrics null"
    _, train_batches, test_batches = loaders(
        data, cfg.measure.batch_size, cfg.measure.batch_size, device, cfg.seed, cfg.data
    )
    return measure_model(
        model,
        train_batches,
        layer=layer or head,
        classifier="layer" if rows == k and (layer is None or layer == head) else None,
        num_classes=k,
        test_loader=test_batches if "test" in splits else None,
        layers=cfg.measure.layers,
        strict=cfg.measure.strict,
    ), note


def load_hf(spec: str) -> tuple[nn.Module, str, int, int | None]:
    """A local Hugging Face causal LM `hf:DIR` (transformers, `local_files_only`: nothing is downloaded):
    (model in eval mode, the module name of its LM head, the head's rows, its positions or None). One
    ConfigError line for a missing directory or one without a causal LM."""
    path = Path(spec.removeprefix("hf:")).expanduser()
    if not path.is_dir():
        raise ConfigError(f"--model {spec}: no such directory")
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # errors stay one line
    try:
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ConfigError(f"--model {spec}: no causal language model in {path} ({first})") from None
    head = model.get_output_embeddings()
    name = next(n for n, m in model.named_modules() if m is head)
    config = model.config
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return model.eval(), name, int(head.weight.shape[0]), positions


@torch.no_grad()
def _check_linear_head(model: nn.Module, head: str, batches: Iterable) -> None:
    """Once per measurement: the model's logits equal h W^T + b of its head's hooked input h (a warning
    where they do not, e.g. a soft-capped or scaled head: the W metrics then read W as it is)."""
    module = dict(model.named_modules())[head]
    tap = FeatureTap(model, [head], inputs=True)
    try:
        x, _ = next(iter(batches))
        logits = model(x).logits
        h = tap.features[head]
    finally:
        tap.close()
    z = logits.reshape(-1, logits.shape[-1]).double()
    expected = linear_logits(h.double(), module.weight, getattr(module, "bias", None))
    if not torch.allclose(z, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max())):
        warn(f"the logits of {head} are not h W^T + b of its input h; the W metrics read its weight as it is")


@torch.no_grad()
def measure_hf(cfg: RunConfig, spec: str, splits: Sequence[str] = SPLITS) -> dict[str, float | None]:
    """`nclab measure --model hf:DIR data=text ...`: h = the input of the LM head (after the final norm) at
    every position, classes the next tokens, K = the head's rows, W = the head's weight; the measured epoch
    of a text run (measure.weighting, min_count, top_k, the language-model keys), without a loss."""
    if cfg.data.name != "text":
        raise ConfigError(
            f"--model {spec} is a language model: measure it on data=text, not data={cfg.data.name}"
        )
    data = load_dataset(cfg.data, cfg.seed)
    model, head, rows, positions = load_hf(spec)
    tokenizer = cfg.data.tokenizer
    own = tokenizer.startswith("hf:") and Path(tokenizer[3:]).expanduser() == Path(spec[3:]).expanduser()
    if data.num_classes > rows or (not own and data.num_classes != rows):
        raise ConfigError(
            f"data.tokenizer={tokenizer} has a vocabulary of {data.num_classes}, the model's head "
            f"{rows} rows; use the model's own tokenizer: data.tokenizer={spec}"
        )
    if positions is not None and data.context > positions:
        raise ConfigError(f"data.context={data.context} is longer than the {positions} positions of {spec}")
    device = resolve_device(cfg.train.device)
    model.to(device)
    _, train_batches, test_batches = loaders(
        data, cfg.measure.batch_size, cfg.measure.batch_size, device, cfg.seed, cfg.data
    )
    _check_linear_head(model, head, train_batches)
    module = dict(model.named_modules())[head]
    bias = getattr(module, "bias", None)
    classifier = Head(module.weight.detach(), None if bias is None else bias.detach())
    return measure_epoch(
        model,
        train_batches,
        test_batches if "test" in splits else None,
        settings(cfg.measure, rows, False, False, data),  # class weighting, min_count / top_k, LM keys
        HookedInput(model, head, device),
        classifier,
    ).record
