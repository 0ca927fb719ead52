"""NC metrics: one-shot (`nc_metrics`) and streaming (`NCAccumulator` + `stream_metrics`)."""

from nclab.metrics.nc import etf_distance, nc_metrics
from nclab.metrics.stream import NCAccumulator, stream_metrics

__all__ = ["NCAccumulator", "etf_distance", "nc_metrics", "stream_metrics"]
