"""Models by name: `MODELS.get(name)(config, input_shape) -> (backbone, feature_dim)`; a `Classifier`
puts a head on the backbone. Every model returns (logits, features), features being the head's input."""

from __future__ import annotations

from torch import Tensor, nn

from nclab.config import RunConfig
from nclab.models.head import LinearHead
from nclab.registry import Registry

__all__ = ["MODELS", "Classifier", "build_model", "parameter_groups"]

MODELS: Registry = Registry("model")


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, head: LinearHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.backbone(x)
        return self.head(h), h


def build_model(cfg: RunConfig, input_shape: tuple[int, ...], num_classes: int) -> Classifier:
    backbone, dim = MODELS.get(cfg.model.name)(cfg.model, input_shape)
    return Classifier(
        backbone, LinearHead(dim, num_classes, bias=cfg.head.bias, bias_sign=cfg.head.bias_sign)
    )


def parameter_groups(model: Classifier) -> dict[str, list[nn.Parameter]]:
    """Trainable parameters by role, for per-group weight decay: the head's biases ("bias"), the head's
    other parameters ("weight") and everything outside the head ("backbone")."""
    head = dict(model.head.named_parameters())
    in_head = {id(p) for p in head.values()}
    groups: dict[str, list[nn.Parameter]] = {
        "backbone": [p for p in model.parameters() if id(p) not in in_head],
        "weight": [p for name, p in head.items() if not name.endswith("bias")],
        "bias": [p for name, p in head.items() if name.endswith("bias")],
    }
    return {name: [p for p in params if p.requires_grad] for name, params in groups.items()}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


from nclab.models import mlp  # noqa: E402, F401  (registers models)
