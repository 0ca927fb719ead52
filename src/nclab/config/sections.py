"""Validation: a component section against the options class of the component it names, and every
pydantic error as one `key: problem` line (an unknown key names what the chosen component takes)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError, field_validator

from nclab import plugins
from nclab.components.base import Section
from nclab.components.data import DATASETS
from nclab.components.losses import LOSSES
from nclab.components.models import MODELS
from nclab.components.optim import OPTIMIZERS
from nclab.errors import ConfigError
from nclab.registry import Registry

# sections that name a registered component, whose own options class validates the section
COMPONENTS: dict[str, Registry] = {"data": DATASETS, "model": MODELS, "loss": LOSSES, "optim": OPTIMIZERS}
# keys that moved, with where they went (one release of a clear error)
MOVED = {
    "data.gaussian": "the gaussian dataset's own options: data.classes, data.train_per_class, "
    "data.test_per_class, data.dim, data.separation",
    "data.multilabel": "the composed datasets' own options: data.single, data.pair, data.test_single, "
    "data.test_pair",
}


def registry(section: str) -> Registry:
    """The registry of a component section (with the plugins of $NCLAB_PLUGINS and entry points loaded)."""
    plugins.load_installed()
    return COMPONENTS[section]


def component_section(section: str, value: Any) -> Section:
    """A data/model/loss/optim section validated against the options class of the component it names (its
    `name`, default the section base's), or one ConfigError line naming what that component takes."""
    reg = registry(section)
    if isinstance(value, BaseModel):
        if type(value) is reg.options(getattr(value, "name", "")):
            return value
        value = value.model_dump()
    if not isinstance(value, dict):
        raise ConfigError(f"{section}: expected a section of keys, got {_clip(repr(value))}")
    name = value.get("name", reg.base.model_fields["name"].default)
    if not isinstance(name, str) or name not in reg:
        raise ConfigError(f"{section}.name: {name!r} is not one of: {', '.join(reg.names())}")
    options = reg.options(name)
    try:
        return options.model_validate(value)
    except ValidationError as exc:
        problems = [_describe(e, options, [section], reg) for e in exc.errors()]
        raise ConfigError("; ".join(problems)) from None


def component_validator(*fields: str) -> Any:
    """The before-validator of component sections `fields` (each validated by `component_section`), for
    RunConfig and other top-level configs that hold one (ufm.UFMConfig's loss)."""
    return field_validator(*fields, mode="before")(
        lambda value, info: component_section(info.field_name, value)
    )


M = TypeVar("M", bound=BaseModel)


def _owners(reg: Registry, key: str) -> list[str]:
    return [n for n in reg.names() if key in reg.options(n).model_fields]


def _describe(
    error: dict[str, Any], model: type[BaseModel], prefix: list[str] = (), reg: Registry | None = None
) -> str:
    """`key: problem` for one pydantic error; in a component section (`reg`) an unknown key names the
    options the chosen component takes, the components that take the key, or where a moved key went."""
    loc = [*prefix, *(str(p) for p in error["loc"])]
    key = ".".join(loc)
    if error["type"] == "extra_forbidden":
        section: type[BaseModel] = model
        for part in loc[len(prefix) : -1]:
            section = section.model_fields[part].annotation
        if key in MOVED:
            return f"{key}: moved to {MOVED[key]}"
        if reg is None:
            return f"{key}: unknown key; allowed: {', '.join(section.model_fields)}"
        name = model.model_fields["name"].default
        owners = _owners(reg, loc[-1])
        hint = f"; {loc[-1]} is an option of {', '.join(owners)}" if owners else ""
        allowed = ", ".join(model.model_fields)
        listing = f"nclab options {prefix[0]} {name}"
        return f"{key}: unknown key; allowed: {allowed} ({prefix[0]}={name}'s options{hint}; {listing})"
    msg = _clip(error["msg"].removeprefix("Value error, "))
    if error["type"] == "model_type" or error["type"] == "dict_type":
        return f"{key}: expected a section of keys, got {_clip(repr(error['input']))}"
    if error["loc"] == ():  # a check across sections: its message names the keys and bounds its values
        return error["msg"].removeprefix("Value error, ")
    return f"{key}: {msg} (got {_clip(repr(error['input']))})"


def _clip(text: str, limit: int = 100) -> str:
    """A value shown in an error line, cut to `limit` characters (a pasted blob must not fill the screen)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def describe(exc: ValidationError, model: type[BaseModel]) -> str:
    """A pydantic validation error of `model` as one line: `key: problem; key: problem`."""
    return "; ".join(_describe(e, model) for e in exc.errors())


def validate(tree: dict[str, Any], model: type[M]) -> M:
    """`model` (RunConfig, or another top-level config such as ufm.UFMConfig) from a key tree; the plugins
    it lists are imported first (their components are in it)."""
    if isinstance(tree, dict) and isinstance(tree.get("plugins"), list):
        plugins.load(tree["plugins"])
    try:
        return model.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(describe(exc, model)) from None
