"""NC metrics: streaming (`NCAccumulator` + `stream_metrics`, the only path; `nc_metrics` is one batch
through it), one measured epoch (`metrics.epoch.measure_epoch`), any model's (`measure_model`, by hook).
These names load their module (and torch) on first use: the metric table (`metrics.table`) comes alone."""

from importlib import import_module
from typing import Any

__all__ = ["NCAccumulator", "etf_distance", "measure_model", "nc_metrics", "stream_metrics"]

HOMES = dict.fromkeys(["NCAccumulator", "nc_metrics", "stream_metrics"], "stream")  # name -> its module
HOMES |= {"etf_distance": "nc", "measure_model": "model"}


def __getattr__(name: str) -> Any:
    if name not in HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"nclab.metrics.{HOMES[name]}"), name)
