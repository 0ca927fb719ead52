"""One validated run configuration (pydantic, validated once; every error one `key: problem` line). The
section bases (`Section`, `DataConfig`, ...) live in components/base.py with the components' options.

- validate.py: component sections against the chosen component's options; errors as one line
- run.py: `RunConfig` (seed, name, out and the data/model/head/loss/optim/train/measure sections)
- resolve.py: defaults < preset (nclab.presets) < YAML file < `key=value` overrides (`resolve`)
- migrate.py: config trees of older run directories (`stored_tree`)
- kinds.py: the top-level config class of a tree's `kind` (training or `nclab ufm`)
"""

from nclab.components.base import (
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    Section,
    positive_sizes,
)
from nclab.config.kinds import config_model, validate_any
from nclab.config.migrate import stored_tree
from nclab.config.resolve import canonical_key, parse_override, read_yaml, resolve
from nclab.config.run import HeadConfig, MeasureConfig, RunConfig, TrainConfig
from nclab.config.validate import (
    COMPONENTS,
    MOVED,
    component_section,
    component_validator,
    describe,
    registry,
    validate,
)
from nclab.errors import ConfigError
from nclab.presets import preset_about, preset_names, read_preset

__all__ = [
    "COMPONENTS", "MOVED", "ConfigError", "DataConfig", "HeadConfig", "LossConfig", "MeasureConfig",
    "ModelConfig", "OptimConfig", "RunConfig", "Section", "TrainConfig", "canonical_key", "component_section",
    "component_validator", "config_model", "describe", "parse_override", "positive_sizes", "preset_about",
    "preset_names", "read_preset", "read_yaml", "registry", "resolve", "stored_tree", "validate",
    "validate_any",
]  # fmt: skip
