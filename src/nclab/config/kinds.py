"""Run kinds: the top-level config class a config tree's `kind` key names."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from nclab.config.run import RunConfig
from nclab.config.validate import validate


def config_model(kind: Any) -> type[BaseModel]:
    """The top-level config of a tree's `kind` key: ufm.UFMConfig for `kind: ufm` (the `nclab ufm`
    simulator's), RunConfig otherwise."""
    if kind == "ufm":
        from nclab.ufm import UFMConfig

        return UFMConfig
    return RunConfig


def validate_any(tree: dict[str, Any]) -> BaseModel:
    """A RunConfig, or the config of the command named by the tree's `kind` key (`kind: ufm`: UFMConfig)."""
    return validate(tree, config_model(tree.get("kind") if isinstance(tree, dict) else None))
