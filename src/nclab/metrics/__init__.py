"""NC metrics: one-shot (`nc_metrics`), streaming (`NCAccumulator` + `stream_metrics`), and any model's
(`measure_model`, features by forward hook)."""

from nclab.metrics.model import measure_model
from nclab.metrics.nc import etf_distance, nc_metrics
from nclab.metrics.stream import NCAccumulator, stream_metrics

__all__ = ["NCAccumulator", "etf_distance", "measure_model", "nc_metrics", "stream_metrics"]
