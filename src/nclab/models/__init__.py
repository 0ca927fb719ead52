"""Models by name: `MODELS.get(name)(config, input_shape) -> (backbone, feature_dim)`; a `Classifier`
puts a head on the backbone. Every model returns (logits, features), features being the head's input."""

from __future__ import annotations

from torch import Tensor, nn

from nclab.config import RunConfig
from nclab.models.head import LinearHead
from nclab.registry import Registry

__all__ = ["MODELS", "Classifier", "build_model"]

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
    return Classifier(backbone, LinearHead(dim, num_classes, bias=cfg.head.bias))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


from nclab.models import mlp  # noqa: E402, F401  (registers models)
