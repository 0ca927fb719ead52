"""Resolving a config: defaults < preset < YAML file < `key=value` overrides, validated once.

Dotted keys reach nested sections (`optim.lr=0.05`); a bare section name sets its `name`
(`model=resnet18` is `model.name=resnet18`); `epochs=N` is `train.epochs=N`. Values are parsed as
YAML scalars (`true`, `0.05`, `null`, `[1, 2]`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel

from nclab.components.base import Section
from nclab.config.run import RunConfig
from nclab.config.validate import validate
from nclab.errors import ConfigError
from nclab.presets import read_preset

M = TypeVar("M", bound=BaseModel)
ALIASES = {"epochs": "train.epochs"}  # RunConfig's short keys


def sections(model: type[BaseModel]) -> list[str]:
    """The keys of `model` that hold a nested Section (`loss`, `optim`, ...)."""
    return [
        k
        for k, f in model.model_fields.items()
        if isinstance(f.annotation, type) and issubclass(f.annotation, Section)
    ]


def canonical_key(key: str, model: type[BaseModel] = RunConfig) -> str:
    """The dotted key a short one stands for: `epochs` -> `train.epochs`, a section `loss` -> `loss.name`."""
    key = ALIASES.get(key, key) if model is RunConfig else key
    return f"{key}.name" if key in sections(model) else key


def _set_dotted(tree: dict[str, Any], key: str, value: Any, model: type[BaseModel] = RunConfig) -> None:
    parts = (key if isinstance(value, dict) else canonical_key(key, model)).split(".")  # dict: a section
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(f"{text!r}: overrides are written key=value (e.g. optim.lr=0.05)")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (line {key_node.start_mark.line + 1})", None
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    return data


def resolve(
    file: str | Path | None = None,
    overrides: Sequence[str | tuple[str, Any]] = (),
    preset: str | None = None,
    model: type[M] = RunConfig,
) -> M:
    """Defaults, then a preset, then a YAML file, then overrides (`key=value` text or (key, value) pairs),
    validated once as `model` (RunConfig, or another top-level config such as ufm.UFMConfig)."""
    tree: dict[str, Any] = {}
    if preset:
        tree = _merge(tree, read_preset(preset))
    if file:
        tree = _merge(tree, read_yaml(file))
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        _set_dotted(tree, key, value, model)
    return validate(tree, model)
