"""Name -> builder registries (timm style): add a model, loss, dataset or optimizer by decorating one
function, with its options beside it, or declare it with the path of its builder (`declare`), which is
imported on first use, so listing and validating options imports no model or dataset library.

    class FocalOptions(LossConfig):
        gamma: float = Field(3.0, ge=0, description="exponent of (1 - p_y)")

    @LOSSES.register("focal", FocalOptions)
    def focal(cfg: FocalOptions, num_classes: int, feature_dim: int) -> Loss: ...

The options class extends the section's base (config.LossConfig: the keys every loss takes); the run config
validates the `loss:` section against the chosen loss's class, so `loss=focal loss.gamma=2` works and
`loss=ce loss.gamma=2` is an error naming what ce takes (`nclab options loss ce`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, create_model

from nclab.errors import ConfigError

T = TypeVar("T", bound=Callable)


class Registry(Generic[T]):
    """A dict of builders keyed by the names users type (`loss=focal`), each with its options class."""

    def __init__(self, kind: str, base: type[BaseModel] | None = None) -> None:
        self.kind = kind
        self.base = base  # the section's common options; None: builders take no options
        self._items: dict[str, T] = {}
        self._options: dict[str, type[BaseModel]] = {}

    def register(self, name: str, options: type[BaseModel] | None = None) -> Callable[[T], T]:
        """Decorator: `fn` builds component `name`; `options` (a subclass of the section's base) holds its
        own keys, default the base alone. The registered class fixes `name` to this component; its docstring
        (else `fn`'s) is the one-line description `nclab options` shows."""

        def add(fn: T) -> T:
            self._add(name, fn, options, fn.__doc__)
            return fn

        return add

    def declare(
        self, name: str, builder: str, options: type[BaseModel] | None = None, description: str = ""
    ) -> None:
        """Component `name` built by `builder` ("module:function"), imported on the first `get`; `options`
        and `description` as for `register`."""
        self._add(name, builder, options, description)

    def _add(self, name: str, builder: T | str, options: type[BaseModel] | None, doc: str | None) -> None:
        options = options or self.base
        if self.base is not None and not issubclass(options, self.base):
            raise TypeError(f"options of {self.kind} {name!r} must extend {self.base.__name__}")
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._items[name] = builder
        if options is not None:
            doc = (options.__dict__.get("__doc__") if options is not self.base else None) or doc
            self._options[name] = create_model(
                options.__name__, __base__=options, __doc__=doc or name, name=(Literal[name], name)
            )

    def _check(self, name: str) -> None:
        if name not in self._items:
            raise ConfigError(f"{self.kind}={name!r} is not one of: {', '.join(self.names())}")

    def get(self, name: str) -> T:
        self._check(name)
        builder = self._items[name]
        if isinstance(builder, str):  # declared: import the builder's module now
            module, function = builder.split(":")
            builder = self._items[name] = getattr(importlib.import_module(module), function)
        return builder

    def options(self, name: str) -> type[BaseModel]:
        """The options class of component `name` (its `name` field fixed to `name`); imports no builder."""
        self._check(name)
        return self._options[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
