"""Resolving a config: defaults < preset < YAML file < `key=value` overrides, validated once.

Dotted keys reach nested sections (`optim.lr=0.05`); a bare section name sets its `name`
(`model=resnet18` is `model.name=resnet18`); `epochs=N` is `train.epochs=N`. Values are parsed as
YAML scalars (`true`, `0.05`, `null`, `[1, 2]`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel

from nclab import plugins
from nclab.components.base import Section
from nclab.config.run import RunConfig, TrainConfig
from nclab.config.sections import COMPONENTS, registry, validate
from nclab.errors import ConfigError
from nclab.files import check_tree, parse_yaml, read_yaml
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
        value = parse_yaml(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), check_tree(value, key.strip())


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve(
    file: str | Path | None = None,
    overrides: Sequence[str | tuple[str, Any]] = (),
    preset: str | None = None,
    model: type[M] = RunConfig,
) -> M:
    """Defaults, then a preset, then a YAML file, then overrides (`key=value` text or (key, value) pairs),
    validated once as `model` (RunConfig, or another top-level config such as ufm.UFMConfig)."""
    typed: dict[str, Any] = {}
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        _set_dotted(typed, key, value, model)
    layers = [("the preset", read_preset(preset) if preset else {})]
    layers += [("the config file", read_yaml(file) if file else {}), ("the command line", typed)]
    tree: dict[str, Any] = {}
    origin: dict[str, str] = {}  # section -> the layer that chose its component
    notes: list[str] = []
    for where, layer in layers:
        notes += _replaced(tree, layer, origin, where, model)
        tree = _merge(tree, layer)
    if model is RunConfig:
        notes += _clip_feature_epochs(tree, layers)
    if "plugins" in model.model_fields and isinstance(tree.get("plugins", []), list):
        tree["plugins"] = plugins.load([*tree.get("plugins", []), *plugins.active()])  # recorded in the run
    if notes:
        print(f"note: {'; '.join(notes)}", file=sys.stderr)
    return validate(tree, model)


def _replaced(
    tree: dict[str, Any], layer: dict[str, Any], origin: dict[str, str], where: str, model: type[BaseModel]
) -> list[str]:
    """Another component chosen by `layer` (the command line's optim=adam over the preset's sgd) drops from
    `tree` the replaced component's options: the keys the new one does not take and those whose default is
    each component's own (the lr). The layer's own keys are merged afterwards, so a typed key the new
    component lacks stays an error. Returns the note of what went."""
    notes = []
    for section in ["loss"] if model is not RunConfig else list(COMPONENTS):
        old, new = tree.get(section), layer.get(section)
        if not isinstance(new, dict):
            continue
        before, origin[section] = origin.get(section, "the default"), where
        reg = registry(section)
        if "name" not in new or not isinstance(old, dict):
            continue
        name = old.get("name", reg.base.model_fields["name"].default)
        if new["name"] == name or new["name"] not in reg or name not in reg:
            continue
        takes, had = reg.options(new["name"]).model_fields, reg.options(name).model_fields
        own = [k for k in old if k != "name" and (k not in takes or _default(takes[k]) != _default(had[k]))]
        if own:
            tree[section] = {k: v for k, v in old.items() if k not in own}
            keys = ", ".join(f"{section}.{k}" for k in own)
            notes.append(f"{section}={new['name']} replaces {before}'s {name}: dropped {keys} ({name}'s)")
    return notes


def _default(field: Any) -> Any:
    return field.get_default(call_default_factory=True)


def _clip_feature_epochs(tree: dict[str, Any], layers: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """A preset's `measure.save_features_at` cut to the run's epochs (`--preset X epochs=3`), with a note; a
    list from the user's file or command line stays as given (out of range: an error)."""
    owner = [where for where, layer in layers if "save_features_at" in (layer.get("measure") or {})]
    epochs = (tree.get("train") or {}).get("epochs", TrainConfig.model_fields["epochs"].default)
    saved = tree["measure"]["save_features_at"] if owner else None
    if owner[-1:] != ["the preset"] or not isinstance(saved, list) or not isinstance(epochs, int):
        return []
    kept = [e for e in saved if not isinstance(e, int) or e <= epochs]
    if len(kept) == len(saved):
        return []
    tree["measure"] = tree["measure"] | {"save_features_at": kept}
    note = f"measure.save_features_at: the preset's epochs after train.epochs={epochs} left out"
    return [f"{note} ({kept} kept)"]
