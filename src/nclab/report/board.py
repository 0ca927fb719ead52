"""TensorBoard beside the files: each scalar's description from the metric table (shown beside its chart),
the figures `nclab plot` writes (at the end of training) and, at `measure.save_features_at`, the embedding
projector (features with class-name labels, in the run's projector/ so its per-epoch folders stay out of the
run's top level) and, for 2-D features, the scatter `nclab visualize` draws, so the live view shows what the
run directory holds. The figure stack (matplotlib) is imported when a figure is drawn, not with training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import scalar

from nclab.metrics import table
from nclab.runs import Run

__all__ = ["Described", "log_features", "log_figures"]


class Described:
    """A SummaryWriter whose scalars carry their metric's description (`table.metric(key).description`,
    with its source) in the summary metadata the first time each tag is written; everything else passes
    through to the writer."""

    def __init__(self, writer: SummaryWriter) -> None:
        self.writer, self.described = writer, set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.writer, name)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        if tag in self.described:
            self.writer.add_scalar(tag, value, step)
            return
        summary = scalar(tag, value)
        entry = table.metric(tag.split("/", 1)[1])
        metadata = summary.value[0].metadata
        metadata.plugin_data.plugin_name = "scalars"
        metadata.summary_description = entry.description + (f" [{entry.source}]" if entry.source else "")
        self.writer._get_file_writer().add_summary(summary, step)
        self.described.add(tag)


def log_features(
    projector: SummaryWriter, writer: SummaryWriter, epoch: int, features: dict[str, Tensor], names: list[str]
) -> None:
    """`<split>_features` projector entries (metadata: class names) into `projector` (the run's projector/,
    one folder per epoch) and, when d = 2, the `features/2d` figure (this epoch's axes) into `writer`."""
    panels = []
    for split in ("train", "test"):
        if f"{split}_features" in features:
            h, y = features[f"{split}_features"], features[f"{split}_labels"]
            labels = [names[k] for k in y.tolist()]
            projector.add_embedding(h, metadata=labels, global_step=epoch, tag=f"{split}_features")
            if h.shape[1] == 2:
                panels.append((split, h.numpy(), y.numpy(), "features"))
    if panels:
        from nclab.report.embed import feature_figure, limits
        from nclab.report.style import paper_style

        with paper_style():
            writer.add_figure("features/2d", feature_figure(panels, epoch, names, limits(panels)), epoch)


def log_figures(writer: SummaryWriter, run: Run, epoch: int, nc_png: Path) -> None:
    """The overview `figures/nc`: the run's `nc_png` (figures/nc.png, drawn once at the paper's 300 dpi)
    shrunk to matplotlib's figure.dpi, at which `add_figure` renders the others; with score samples,
    `figures/scores` of the run as it is now."""
    import matplotlib
    from PIL import Image

    from nclab.report.groups import group_runs
    from nclab.report.plots import scores_figure
    from nclab.report.style import STYLE, paper_style

    with Image.open(nc_png) as image:
        shrink = max(1, round(STYLE["savefig.dpi"] / matplotlib.rcParams["figure.dpi"]))
        pixels = image.convert("RGB").reduce(shrink)
    writer.add_image("figures/nc", np.asarray(pixels), epoch, dataformats="HWC")
    if run.array_epochs("scores"):
        with paper_style():
            writer.add_figure("figures/scores", scores_figure(group_runs([run])), epoch)
