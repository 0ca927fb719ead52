"""`nclab visualize` (and `nclab plot --kind embed`): 2-D pictures of the penultimate features over epochs,
train and test panels, one file per epoch (png, pdf or svg) and an animated GIF (figures/embed/). Features are
plotted directly when d = 2 (the center-loss study's scatter), otherwise embedded with t-SNE (scikit-learn) or
PCA (train and test in one embedding, so a class sits in the same place in both panels) and min-max normalised
to [0, 1] per axis as in the BCE vs CE study's t-SNE figures. Every frame has the
same axis limits (those of all frames together), so motion in the animation is motion of the features; the
legend gives the dataset's class names. Features are read from features/ only (saved at
`measure.save_features_at`, or by `nclab visualize`, which measures the chosen epochs that lack them from
their checkpoints before it calls `visualize`: `feature_epochs` names them).
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from nclab.errors import ConfigError, RunError
from nclab.files import replace
from nclab.report.style import COLUMN, PALETTE, paper_style, pick_evenly, render_png, save
from nclab.runs import Run

__all__ = ["METHODS", "embed_2d", "feature_epochs", "feature_figure", "feature_frames", "visualize"]

MARKERS = "osD^vP*Xh<>p"
Panel = tuple[str, np.ndarray, np.ndarray, str]  # split, (N, 2) coordinates, labels, method used

METHODS = ("auto", "tsne", "pca")


def embed_2d(features: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """(N, 2) coordinates and the method used: the features themselves when d = 2 and method=auto, else t-SNE
    or PCA, min-max normalised per axis."""
    if method not in METHODS:
        raise ConfigError(f"--method {method}: choose from {', '.join(METHODS)}")
    if features.shape[1] == 2 and method == "auto":
        return features, "features"
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if method == "pca" or features.shape[1] < 2:
        xy, used = (
            PCA(n_components=min(2, features.shape[1]), random_state=seed).fit_transform(features),
            "PCA",
        )
    else:
        perplexity = min(30.0, (len(features) - 1) / 3)
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
            features
        )
        used = "t-SNE"
    if xy.shape[1] == 1:
        xy = np.concatenate([xy, np.zeros_like(xy)], 1)
    span = xy.max(0) - xy.min(0)
    return (xy - xy.min(0)) / np.where(span > 0, span, 1), used


def feature_epochs(run: Run, epochs: list[int] | None) -> tuple[list[int], list[int]]:
    """(the epochs to draw, those of them without saved features): `epochs`, or the saved ones, or 8 evenly
    spaced checkpoints; an epoch with neither features nor a checkpoint is an error."""
    saved = run.array_epochs("features")
    checkpoints = sorted(run.checkpoints())
    epochs = sorted(set(epochs)) if epochs else saved or pick_evenly(checkpoints, 8)
    missing = [e for e in epochs if e not in saved]
    unavailable = [e for e in missing if e not in checkpoints]
    if unavailable or not epochs:
        raise RunError(
            f"no features or checkpoint for epochs {unavailable or 'any'} in {run.path}; features: {saved}, "
            f"checkpoints: {checkpoints}; train with measure.save_features_at=[...] or pick other --epochs"
        )
    return epochs, missing


def _features(run: Run, epochs: list[int] | None) -> dict[int, dict[str, np.ndarray]]:
    """Saved features of the chosen epochs (read only; `nclab visualize` measures missing ones first)."""
    epochs, missing = feature_epochs(run, epochs)
    if missing:
        raise RunError(
            f"no saved features for epochs {missing} in {run.path}; `nclab visualize` measures them from the "
            "checkpoints first"
        )
    readable = run.readable_arrays("features", epochs)
    if not readable:
        raise RunError(f"no readable features in {run.path}/features (see the warnings above)")
    return {e: {k: v.numpy() for k, v in arrays.items()} for e, arrays in readable.items()}


def class_colors(num_classes: int) -> list:
    """Colour-blind-safe class colours: Okabe-Ito up to 8 classes, Tableau's colour-blind 10 up to 10,
    then evenly spaced viridis colours (markers also differ per class)."""
    if num_classes <= len(PALETTE):
        return PALETTE[:num_classes]
    if num_classes <= 10:
        return plt.style.library["tableau-colorblind10"]["axes.prop_cycle"].by_key()["color"][:num_classes]
    return list(plt.get_cmap("viridis")(np.linspace(0, 1, num_classes)))


def limits(panels: list[Panel]) -> tuple[tuple[float, float], tuple[float, float]]:
    """(x limits, y limits) covering every point of every panel, with a 4% margin."""
    xy = np.concatenate([p[1] for p in panels])
    low, high = xy.min(0), xy.max(0)
    pad = 0.04 * np.where(high > low, high - low, 1)
    return (low[0] - pad[0], high[0] + pad[0]), (low[1] - pad[1], high[1] + pad[1])


def feature_figure(
    panels: list[Panel], epoch: int, names: list[str], lims: tuple[tuple[float, float], tuple[float, float]]
) -> Figure:
    """One scatter per split, one colour and marker per class, axes fixed to `lims`, class-name legend."""
    colors = class_colors(len(names))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(COLUMN * len(panels), COLUMN * 0.85), squeeze=False, layout="constrained"
    )
    for ax, (split, xy, labels, used) in zip(axes.flat, panels, strict=True):
        for k, name in enumerate(names):
            pts = xy[labels == k]
            marker = MARKERS[k % len(MARKERS)]
            ax.scatter(pts[:, 0], pts[:, 1], s=3, color=colors[k], marker=marker, label=name)
        ax.set_xlim(lims[0])
        ax.set_ylim(lims[1])
        ax.set_title(f"{split} features, epoch {epoch}" + ("" if used == "features" else f" ({used})"))
        ax.set_xlabel("$h_1$" if used == "features" else f"{used} 1")
        ax.set_ylabel("$h_2$" if used == "features" else f"{used} 2")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    columns = -(-len(names) // 20)  # 20 class names a column (CIFAR-100: 5 columns)
    fig.legend(handles, labels, loc="outside right center", markerscale=2.5, frameon=False, ncols=columns)
    return fig


def feature_frames(
    run: Run, epochs: list[int] | None = None, method: str = "auto"
) -> list[tuple[int, Figure]]:
    """(epoch, figure) per chosen epoch, all with the same axis limits; build them inside `paper_style()`."""
    from nclab.data import class_names

    data = _features(run, epochs)
    frames: dict[int, list[Panel]] = {}
    for epoch, arrays in data.items():
        splits = [s for s in ("train", "test") if f"{s}_features" in arrays]
        sizes = np.cumsum([len(arrays[f"{s}_features"]) for s in splits])[:-1]
        joint = np.concatenate([arrays[f"{s}_features"] for s in splits])  # one embedding: a class sits
        xy, used = embed_2d(joint, method, seed=epoch)  # in the same place in both panels
        parts = zip(splits, np.split(xy, sizes), strict=True)
        frames[epoch] = [(s, part, arrays[f"{s}_labels"], used) for s, part in parts]
    num_classes = int(max(p[2].max() for panels in frames.values() for p in panels)) + 1
    names = class_names(run.config().data, num_classes)
    lims = limits([p for panels in frames.values() for p in panels])
    return [(epoch, feature_figure(panels, epoch, names, lims)) for epoch, panels in frames.items()]


def visualize(
    run: Run,
    epochs: list[int] | None = None,
    method: str = "auto",
    fps: float = 2.0,
    fmt: str = "png",
    out: Path | None = None,
) -> list[Path]:
    """Write epoch_XXXX.<fmt> per epoch and embed.gif into `out` (default the run's figures/embed/);
    returns their paths."""
    from PIL import Image

    out = out or run.path / "figures" / "embed"
    paths, frames = [], []
    with paper_style():
        for epoch, fig in feature_frames(run, epochs, method):
            frames.append(Image.open(BytesIO(render_png(fig, dpi=110))).convert("RGB"))
            paths.append(save(fig, out / f"epoch_{epoch:04d}.{fmt}"))
    gif = out / "embed.gif"
    replace(
        gif,
        lambda tmp: frames[0].save(
            tmp, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0
        ),
    )
    return [*paths, gif]
