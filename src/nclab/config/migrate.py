"""Run directories written by older versions, read by this one (`Run.config()` passes config.yaml through
`stored_tree`); user YAML files get the one-line errors of config.sections instead."""

from __future__ import annotations

from typing import Any, get_args

from pydantic.fields import FieldInfo

from nclab import plugins
from nclab.config.kinds import config_model
from nclab.config.sections import COMPONENTS

LIFTED = {"gaussian": {"per_class": "train_per_class"}, "multilabel": {}}  # data.<sub>.<key> -> data.<key>


def stored_tree(tree: dict[str, Any]) -> dict[str, Any]:
    """A run directory's config tree as this version reads it. Runs written before components owned their
    options hold every component's options in one shared section (and the data.gaussian / data.multilabel
    sub-sections): the keys of the chosen component are kept (the sub-sections lifted into `data`), the
    others, which that run never used, dropped (only the sections its kind's config has: a `kind: ufm`
    tree holds one, its loss). A current tree comes back unchanged. The plugins the run recorded are
    imported first (their components are in it)."""
    tree = dict(tree)
    if isinstance(tree.get("plugins"), list):
        plugins.load(tree["plugins"])
    top = config_model(tree.get("kind")).model_fields
    for section in [s for s in COMPONENTS if s in top]:
        value, reg = tree.get(section), COMPONENTS[section]
        name = value.get("name", reg.base.model_fields["name"].default) if isinstance(value, dict) else None
        if not isinstance(name, str) or name not in reg:
            continue
        value = dict(value)
        for sub, renames in LIFTED.items() if section == "data" else ():
            for key, v in (value.pop(sub, None) or {}).items():
                value.setdefault(renames.get(key, key), v)
        fields = reg.options(name).model_fields
        tree[section] = {
            k: v for k, v in value.items() if k in fields and (v is not None or _admits_none(fields[k]))
        }
    return tree


def _admits_none(field: FieldInfo) -> bool:
    """Whether a field takes null; older run dirs wrote null for "the model's own default" where the model's
    options class now holds that default."""
    return field.annotation is None or type(None) in get_args(field.annotation)
