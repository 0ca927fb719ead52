"""Your own components from the command line: a plugin is a Python module that registers models, losses,
datasets, optimizers or metrics when imported (the decorators of "Add your own", docs/architecture.md).

    nclab train --plugin my_losses loss=tempered_ce     # a module on the path, or a file: ./my_losses.py
    NCLAB_PLUGINS=my_losses,./more.py nclab options loss    # the same for every command
    [project.entry-points."nclab.plugins"] mine = "my_package.nclab_parts"     # an installed package's

A run records the plugins it was configured with (`plugins:` in config.yaml, files as absolute paths), and
reading that config imports them again, so `plot`, `compare`, `measure` and `--resume` need no flag. A
plugin that cannot be imported is one error line."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from nclab.errors import ConfigError

__all__ = ["ENV", "GROUP", "active", "load", "load_installed"]

ENV = "NCLAB_PLUGINS"  # comma-separated module names or .py files
GROUP = "nclab.plugins"  # entry-point group of installed plugins
_loaded: dict[str, None] = {}  # recorded names in load order (a dict as an ordered set)
_installed = False


def _spec(name: str) -> str:
    """The recorded form of a plugin: a file as its absolute path, a module by its name."""
    return str(Path(name).resolve()) if name.endswith(".py") or os.sep in name else name


def load(names: list[str]) -> list[str]:
    """Import each plugin once (a module name or a .py file) and return their recorded forms."""
    specs = []
    for name in names:
        spec = _spec(name)
        if spec not in _loaded:
            _import(spec)
            _loaded[spec] = None
        specs.append(spec)
    return specs


def _import(spec: str) -> None:
    try:
        if spec.endswith(".py"):
            module_name = f"nclab_plugin_{Path(spec).stem}"
            location = importlib.util.spec_from_file_location(module_name, spec)
            if location is None or not Path(spec).is_file():
                raise ImportError(f"no file {spec}")
            module = importlib.util.module_from_spec(location)
            sys.modules[module_name] = module
            location.loader.exec_module(module)
        else:
            if "" not in sys.path and os.getcwd() not in sys.path:  # `nclab` scripts: the cwd's modules too
                sys.path.append(os.getcwd())
            importlib.import_module(spec)
    except ImportError as exc:
        raise ConfigError(
            f"plugin {spec} cannot be imported ({exc}); put it on PYTHONPATH, give its .py file, or drop it "
            f"from --plugin / {ENV} / the run's config.yaml `plugins:`"
        ) from None


def load_installed() -> None:
    """The plugins of $NCLAB_PLUGINS and of the `nclab.plugins` entry-point group, once per process."""
    global _installed
    if _installed:
        return
    _installed = True
    load([n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()])
    for point in entry_points(group=GROUP):
        point.load()


def active() -> list[str]:
    """The plugins loaded so far (by --plugin, $NCLAB_PLUGINS or a run's config), as a run records them."""
    return list(_loaded)
