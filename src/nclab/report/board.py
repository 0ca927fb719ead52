"""TensorBoard beside the files: the figures `nclab plot` writes (at the end of training) and, at
`measure.save_features_at`, the embedding projector (features with class-name labels, in the run's
projector/ so its per-epoch folders stay out of the run's top level) and, for 2-D features, the scatter
`nclab visualize` draws, so the live view shows what the run directory holds."""

from __future__ import annotations

from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

from nclab.report.embed import feature_figure, limits
from nclab.report.groups import group_runs
from nclab.report.plots import NC_PANELS, curves_figure, paper_style, scores_figure
from nclab.runs import Run

__all__ = ["log_features", "log_figures"]


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
        with paper_style():
            writer.add_figure("features/2d", feature_figure(panels, epoch, names, limits(panels)), epoch)


def log_figures(writer: SummaryWriter, run: Run, epoch: int) -> None:
    """The overview `figures/nc` and, with score samples, `figures/scores` of the run as it is now."""
    groups = group_runs([run])
    with paper_style():
        writer.add_figure("figures/nc", curves_figure(groups, NC_PANELS), epoch)
        if run.array_epochs("scores"):
            writer.add_figure("figures/scores", scores_figure(groups), epoch)
