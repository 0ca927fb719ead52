"""NC metrics: streaming (`NCAccumulator` + `stream_metrics`, the only path; `nc_metrics` is one batch
through it), one measured epoch (`metrics.epoch.measure_epoch`), any model's (`measure_model`, by hook)."""

from nclab.metrics.model import measure_model
from nclab.metrics.nc import etf_distance
from nclab.metrics.stream import NCAccumulator, nc_metrics, stream_metrics

__all__ = ["NCAccumulator", "etf_distance", "measure_model", "nc_metrics", "stream_metrics"]
