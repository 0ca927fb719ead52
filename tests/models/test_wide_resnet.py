"""wide_resnet50 at the 2022 study's widths: d = 2048, counts as reference/seed-core.md B4 (K = 10, 100)."""

import pytest

from nclab.config import resolve
from nclab.models import describe


@pytest.mark.parametrize(
    ("width", "k10", "k100"),
    [
        (0.25, 5_880_074, 6_064_484),
        (0.5, 10_345_674, 10_530_084),
        (1, 23_520_842, 23_705_252),
        (2, 66_847_050, 67_031_460),
    ],
)
def test_counts_and_feature_dim(width, k10, k100):
    cfg = resolve(None, ["model=wide_resnet50", f"model.width={width}"])
    d, n = describe(cfg, (3, 32, 32), 10)
    assert d == 2048 and n == pytest.approx({0.25: 5.9e6, 0.5: 10.3e6, 1: 23.5e6, 2: 66.8e6}[width], rel=0.02)
    assert n == k10 and describe(cfg, (3, 32, 32), 100)[1] == k100


def test_default_width_is_two_and_width_one_is_resnet50():
    assert describe(resolve(None, ["model=wide_resnet50"]), (3, 32, 32), 10)[1] == 66_847_050
    wide = describe(resolve(None, ["model=wide_resnet50", "model.width=1"]), (3, 32, 32), 10)
    assert wide == describe(resolve(None, ["model=resnet50"]), (3, 32, 32), 10)
