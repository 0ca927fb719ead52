"""Named run configurations: one YAML file per experiment of the studies, plus `demo`.

Each file holds an `about` block (`description`: one line; `source`: paper and table or figure; `series`: the
overrides that vary it into the study's series, where it has one) and the config sections. A name starts with
its study's key (`zhu2021-cifar10-sgd`); `nclab presets` lists them grouped by study.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from nclab.errors import ConfigError

__all__ = ["STUDIES", "preset_about", "preset_names", "read_preset", "study_of"]

STUDIES = {
    "zhu2021": "Zhu et al. 2021, A Geometric Analysis of Neural Collapse with Unconstrained Features "
    "(NeurIPS)",
    "zhou2022": "Zhou et al. 2022, Are All Losses Created Equal: A Neural Collapse Perspective (NeurIPS)",
    "li2023": "Li et al. 2023, Neural Collapse in Multi-label Learning with Pick-all-label Loss (ICML 2024)",
    "bce2025": "Li, Xiao & Shen 2025, BCE vs. CE in Deep Feature Learning (ICML)",
    "center": "mo-vic 2019, standalone-center-loss (after Wen et al. 2016, center loss)",
    "lc2024": "Wu & Papyan 2024, Linguistic Collapse: Neural Collapse in (Large) Language Models (NeurIPS)",
}


def study_of(name: str) -> str:
    """The study key a preset name starts with, or "other" (e.g. `demo`)."""
    key = name.split("-", 1)[0]
    return key if key in STUDIES else "other"


def preset_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml") for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml")
    )


def _preset_file(name: str) -> dict[str, Any]:
    if name not in preset_names():
        raise ConfigError(
            f"preset {name!r} is unknown; `nclab presets` lists them (e.g. zhu2021-cifar10-sgd)"
        )
    return yaml.safe_load(resources.files(__name__).joinpath(f"{name}.yaml").read_text()) or {}


def read_preset(name: str) -> dict[str, Any]:
    """The config sections of a preset (its `about` block removed)."""
    tree = _preset_file(name)
    tree.pop("about", None)
    return tree


def preset_about(name: str) -> dict[str, str]:
    """A preset's `about` block: description, source (paper, table or figure), series (overrides to vary)."""
    return _preset_file(name).get("about") or {}
