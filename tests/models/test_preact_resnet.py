"""The center-loss study's pre-activation ResNet: the fc1 embedding is the feature; map sizes as the study."""

import torch

from nclab.config import resolve
from nclab.models import build_model


def test_embedding_is_the_linear_fc1_output_and_maps_shrink_as_the_study():
    model = build_model(resolve(None, ["model=preact_resnet", "model.embed_dim=2"]), (1, 28, 28), 10)
    layers = list(model.backbone)
    x = torch.randn(2, 1, 28, 28)
    sizes = []
    for layer in layers[:6]:
        x = layer(x)
        sizes.append(x.shape[-1])
    assert sizes == [26, 26, 13, 13, 7, 7] and x.shape[1] == 128
    fc1 = layers[-1]
    assert isinstance(fc1, torch.nn.Linear) and fc1.out_features == 2 and model.feature_dim == 2
    assert all(m.bias is not None for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))
