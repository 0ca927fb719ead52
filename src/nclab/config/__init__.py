"""One validated run configuration (pydantic, validated once; every error one `key: problem` line). The
section bases (`Section`, `DataConfig`, ...) live in components/base.py with the components' options.

- sections.py: component sections against the chosen component's options; errors as one line
- run.py: `RunConfig` (seed, name, out and the data/model/head/loss/optim/train/measure sections)
- sources.py: defaults < preset (nclab.presets) < YAML file < `key=value` overrides (`resolve`)
- migrate.py: config trees of older run directories (`stored_tree`)
- kinds.py: run kinds (training, `nclab ufm`): config class, progress total, resumable, measurable
"""

from nclab.components.base import (
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    Section,
    positive_sizes,
)
from nclab.config.kinds import RunKind, config_model, kind_of, register_kind, run_kind, validate_any
from nclab.config.migrate import stored_tree
from nclab.config.run import HeadConfig, MeasureConfig, RunConfig, TrainConfig, plugins_field
from nclab.config.sections import (
    COMPONENTS,
    MOVED,
    component_section,
    component_validator,
    describe,
    registry,
    validate,
)
from nclab.config.sources import canonical_key, parse_override, read_yaml, resolve
from nclab.errors import ConfigError
from nclab.presets import preset_about, preset_names, read_preset

__all__ = [
    "COMPONENTS",
    "MOVED",
    "ConfigError",
    "DataConfig",
    "HeadConfig",
    "LossConfig",
    "MeasureConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "RunKind",
    "Section",
    "TrainConfig",
    "canonical_key",
    "component_section",
    "component_validator",
    "config_model",
    "describe",
    "kind_of",
    "parse_override",
    "plugins_field",
    "positive_sizes",
    "preset_about",
    "preset_names",
    "read_preset",
    "read_yaml",
    "register_kind",
    "registry",
    "resolve",
    "run_kind",
    "stored_tree",
    "validate",
    "validate_any",
]  # fmt: skip
