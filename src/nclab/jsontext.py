"""Every JSON text nclab writes (metrics.jsonl, measure.jsonl, status.json, `measure --out`, the resume
state's skeleton) goes through `dumps`: strict JSON (RFC 8259), so NaN and +-Infinity, which Python's json
module would write as bare `NaN`/`Infinity` tokens no other parser accepts, become null."""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps", "finite"]


def finite(value: Any) -> Any:
    """`value` with every non-finite float (in nested dicts, lists and tuples) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON text of `value` (non-finite floats as null); `kwargs` as json.dumps (indent, ...)."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)
