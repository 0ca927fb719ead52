"""Name -> builder registries (timm style): add a model, loss or dataset by decorating one function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from nclab.errors import ConfigError

T = TypeVar("T", bound=Callable)


class Registry(Generic[T]):
    """A dict of builders keyed by the names users type (`loss=focal`)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(fn: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = fn
            return fn

        return add

    def get(self, name: str) -> T:
        if name not in self._items:
            raise ConfigError(f"{self.kind}={name!r} is not one of: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
