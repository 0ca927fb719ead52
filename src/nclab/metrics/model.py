"""NC metrics of anyone's model: `measure_model(model, loader, layer="fc")`.

The features are the input of the named layer (normally the classifier), read by a forward hook, so the
model is used as it is: any architecture, any device, any output type. Features of any dtype (bf16/fp16
under autocast) stream into the float64 accumulators of `metrics.stream`; nothing N x d is kept beyond the
train features the nearest-centre metrics need (in their own dtype).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from nclab.errors import ConfigError
from nclab.metrics.hooks import FeatureTap
from nclab.metrics.nc import nc5
from nclab.metrics.stream import NCAccumulator, layer_metrics, stream_metrics

__all__ = ["measure_model", "resolve_classifier"]

Classifier = str | nn.Module | tuple[Tensor, Tensor | None] | None


def resolve_classifier(
    model: nn.Module, layer: str, classifier: Classifier
) -> tuple[Tensor | None, Tensor | None]:
    """(W, b) of logits z = W h + b: "layer" takes the hooked layer's own weight and bias (when it is linear:
    a 2-D weight), a module name or module takes that one's, a (W, b) pair is used as given, None: no
    classifier (the W-dependent keys are null)."""
    if classifier is None:
        return None, None
    if isinstance(classifier, tuple):
        return classifier[0].detach(), None if classifier[1] is None else classifier[1].detach()
    modules = dict(model.named_modules())
    if isinstance(classifier, str):
        name = layer if classifier == "layer" else classifier
        if name not in modules:
            raise ConfigError(
                f"classifier {name!r} is not a module of the model; pass a module name or (W, b)"
            )
        classifier = modules[name]
    weight = getattr(classifier, "weight", None)
    if not isinstance(weight, Tensor) or weight.dim() != 2:
        if classifier is modules.get(layer):
            return None, None  # the hooked layer is not linear: features only
        raise ConfigError(f"classifier {type(classifier).__name__} has no 2-D weight; pass (W, b) or None")
    bias = getattr(classifier, "bias", None)
    return weight.detach(), None if bias is None else bias.detach()


@torch.no_grad()
def measure_model(
    model: nn.Module,
    loader: Iterable,
    layer: str = "fc",
    classifier: Classifier = "layer",
    num_classes: int | None = None,
    test_loader: Iterable | None = None,
    layers: Sequence[str] = (),
    ood_loader: Iterable | None = None,
    strict: bool = False,
) -> dict[str, float | None]:
    """Every scalar NC metric of `model` on `loader` ((x, y) batches, e.g. the un-augmented train split).

    h = the input of module `layer` (torchvision ResNets: "fc"; timm: `model.pretrained_cfg["classifier"]`).
    K = `num_classes`, else the classifier's rows. `test_loader` adds the `test_*` keys (nearest centre with
    the train means), `layers` the classifier-free metrics of other modules' (pooled) outputs as
    `<layer>/<key>`, `ood_loader` NC5. The model runs in eval mode on its own device and is restored after.
    """
    tap = FeatureTap(model, [layer], inputs=True)
    depth = FeatureTap(model, layers) if layers else None
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        weight, bias = resolve_classifier(model, layer, classifier)
        k = num_classes or (None if weight is None else int(weight.shape[0]))
        if k is None:
            raise ConfigError("measure_model needs num_classes when there is no classifier")
        accs = {"train": NCAccumulator(k, weight, bias, keep_features=True, strict=strict)}
        accs |= {f"train:{n}": NCAccumulator(k, keep_features=True, strict=strict) for n in layers}
        _run(model, loader, tap, depth, layer, accs, "train", device)
        out = stream_metrics(accs["train"])
        if test_loader is not None:
            test = {
                "test": NCAccumulator(
                    k, weight, bias, ncc_means=accs["train"].stats().centres(), strict=strict
                )
            }
            test |= {
                f"test:{n}": NCAccumulator(k, ncc_means=accs[f"train:{n}"].stats().centres()) for n in layers
            }
            _run(model, test_loader, tap, depth, layer, test, "test", device)
            out |= stream_metrics(None, test["test"])
            accs |= test
        for n in layers:
            out |= layer_metrics(accs[f"train:{n}"], accs.get(f"test:{n}"), n)
        if ood_loader is not None:
            total, count = None, 0
            for x, *_ in ood_loader:
                model(x.to(device, non_blocking=True))
                h = tap.features[layer].to(torch.float64).sum(0)
                total, count = (h if total is None else total + h), count + len(x)
            out["nc5"] = nc5(accs["train"].stats(), total / count)
    finally:
        tap.close()
        if depth is not None:
            depth.close()
        model.train(was_training)
    return out


def _run(
    model: nn.Module,
    loader: Iterable,
    tap: FeatureTap,
    depth: FeatureTap | None,
    layer: str,
    accs: dict[str, NCAccumulator],
    split: str,
    device: torch.device,
) -> None:
    for batch in loader:
        x, y = batch[0], batch[1].to(device, non_blocking=True)
        model(x.to(device, non_blocking=True))
        accs[split].update(tap.features[layer], y)
        for name, feats in (depth.features if depth is not None else {}).items():
            accs[f"{split}:{name}"].update(feats, y)
