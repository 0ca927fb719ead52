"""NC metrics of anyone's model: `measure_model(model, loader, layer="fc")`.

The features are the input of the named layer (normally the classifier), read by a forward hook, so the
model is used as it is: any architecture, any device, any output type. It is training's measured epoch
(`metrics.epoch.measure_epoch`) with a hook as the feature source and no loss: features of any dtype
(bf16/fp16 under autocast) stream into the float64 accumulators of `metrics.stream`; nothing N x d is kept
beyond the train features the nearest-centre metrics need (in their own dtype).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from nclab.errors import ConfigError
from nclab.metrics.epoch import Head, Settings, measure_epoch
from nclab.metrics.hooks import HookedInput

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
    """Every scalar NC metric of `model` on `loader` ((x, y) batches, e.g. the un-augmented train split):
    `metrics.epoch.measure_epoch` with the features of a hook.

    h = the input of module `layer` (torchvision ResNets: "fc"; timm: `model.pretrained_cfg["classifier"]`).
    K = `num_classes`, else the classifier's rows. `test_loader` adds the `test_*` keys (nearest centre with
    the train means), `layers` the classifier-free metrics of other modules' (pooled) outputs as
    `<layer>/<key>`, `ood_loader` NC5. The model runs in eval mode on its own device and is restored after.
    """
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    source = HookedInput(model, layer, device)  # an unknown layer: one error listing the model's modules
    try:
        weight, bias = resolve_classifier(model, layer, classifier)
        k = num_classes or (None if weight is None else int(weight.shape[0]))
        if k is None:
            raise ConfigError("measure_model needs num_classes when there is no classifier")
    except ConfigError:
        source.close()
        raise
    settings = Settings(k, layers=layers, strict=strict)
    return measure_epoch(
        model, loader, test_loader, settings, source, Head(weight, bias), ood=ood_loader
    ).record
