"""Where a measured epoch gets its features: the model's own `(logits, h)` output (`ModelOutput`, nclab's
models) or a forward hook on the input of any module (`HookedInput`, anyone's model), and the features of
other named modules (`FeatureTap`: NC across depth). A feature source is a callable `(model, x) -> (logits
or None, h)` with a `close()`; another kind (a language model's head, ...) is one more such class."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from nclab.errors import ConfigError

__all__ = ["FeatureSource", "FeatureTap", "HookedInput", "ModelOutput", "pooled"]


def pooled(t: Tensor) -> Tensor:
    """A layer's output as (B, C) features: (B, C) as is; (B, C, H, W) averaged over space (global average
    pooling, as a CNN's head sees it); (B, T, C) token sequences averaged over tokens; else flattened."""
    if t.dim() == 4:
        return t.mean((2, 3))
    if t.dim() == 3:
        return t.mean(1)
    return t.flatten(1)


class FeatureTap:
    """Forward hooks on named submodules: after a forward, `features[name]` is the module's output as (B, C)
    (`pooled`), or with `inputs=True` its first input flattened (the features a classifier layer receives;
    (B, T, d) token sequences as (B*T, d)); a copy where that would be a view, so later in-place ops of the
    forward do not change it. Unknown names raise one ConfigError that lists the model's module names."""

    def __init__(self, model: nn.Module, names: Sequence[str], inputs: bool = False) -> None:
        modules = dict(model.named_modules())
        unknown = [n for n in names if n not in modules]
        if unknown:
            known = [n for n in modules if n]
            shown = ", ".join(known[:40]) + (" ..." if len(known) > 40 else "")
            raise ConfigError(f"no module named {', '.join(unknown)} in the model; its modules: {shown}")
        self.features: dict[str, Tensor] = {}
        self.handles = [modules[n].register_forward_hook(self._hook(n, inputs)) for n in names]

    def _hook(self, name: str, inputs: bool) -> Callable:
        def hook(module: nn.Module, args: tuple, output: Tensor | tuple) -> None:
            if inputs:  # a sequence (B, T, d) into a linear head (an LM): one sample per position
                seen = args[0]
                feats = seen.reshape(-1, seen.shape[-1]) if seen.dim() == 3 else seen.flatten(1)
            else:
                seen = output[0] if isinstance(output, tuple) else output
                feats = pooled(seen)
            # a view would change under a later in-place op (ReLU(inplace=True) after a BatchNorm, a
            # residual `out += x`): keep a copy of what the module produced
            self.features[name] = feats.clone() if feats.data_ptr() == seen.data_ptr() else feats

        return hook

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


class FeatureSource:
    """The features of a batch: `(logits or None, h)`; `close()` removes what the source attached."""

    def __call__(self, model: nn.Module, x: Tensor) -> tuple[Tensor | None, Tensor]:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to remove by default."""


class ModelOutput(FeatureSource):
    """nclab's models return `(logits, h)` (`models.Classifier`)."""

    def __call__(self, model: nn.Module, x: Tensor) -> tuple[Tensor | None, Tensor]:
        return model(x)


class HookedInput(FeatureSource):
    """h = the input of module `layer` (normally the classifier), read by a forward hook; the batch is moved
    to `device` first; no logits (the classifier's W and b are read from the module itself)."""

    def __init__(self, model: nn.Module, layer: str, device: torch.device) -> None:
        self.tap, self.layer, self.device = FeatureTap(model, [layer], inputs=True), layer, device

    def __call__(self, model: nn.Module, x: Tensor) -> tuple[Tensor | None, Tensor]:
        model(x.to(self.device, non_blocking=True))
        return None, self.tap.features.pop(self.layer)

    def close(self) -> None:
        self.tap.close()
