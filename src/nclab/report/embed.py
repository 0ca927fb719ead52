"""`nclab visualize`: 2-D pictures of the penultimate features over epochs, train and test panels, one PNG per
epoch and an animated GIF (figures/embed/). Features are plotted directly when d = 2 (center-loss style),
otherwise embedded with t-SNE (scikit-learn) or PCA and min-max normalised to [0, 1] per axis as in the BCE
vs CE study's t-SNE figures. Features come from features/ (saved at `measure.save_features_at`); epochs
without them but with a checkpoint are measured from the checkpoint first and saved there.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from nclab.errors import NclabError
from nclab.report.plots import pick_evenly
from nclab.runs import Run

__all__ = ["METHODS", "embed_2d", "visualize"]

METHODS = ("auto", "tsne", "pca")


def embed_2d(features: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """(N, 2) coordinates and the method used: the features themselves when d = 2 and method=auto, else t-SNE
    or PCA, min-max normalised per axis."""
    if method not in METHODS:
        raise NclabError(f"--method {method}: choose from {', '.join(METHODS)}")
    if features.shape[1] == 2 and method == "auto":
        return features, "features"
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


def _features(run: Run, epochs: list[int] | None) -> dict[int, dict[str, np.ndarray]]:
    """Saved features of the chosen epochs; missing ones are measured from checkpoints (and saved)."""
    saved = run.array_epochs("features")
    checkpoints = sorted(run.checkpoints())
    if epochs is None:
        epochs = saved or pick_evenly(checkpoints, 8)
    missing = [e for e in epochs if e not in saved]
    unavailable = [e for e in missing if e not in checkpoints]
    if unavailable or not epochs:
        raise NclabError(
            f"no features or checkpoint for epochs {unavailable or 'any'} in {run.path}; features: {saved}, "
            f"checkpoints: {checkpoints}; train with measure.save_features_at=[...] or pick other --epochs"
        )
    if missing:
        from nclab.remeasure import measure_checkpoints

        for epoch, measured in measure_checkpoints(run, missing, features=True):
            run.save_arrays("features", epoch, measured.features)
    return {e: {k: v.numpy() for k, v in run.load_arrays("features", e).items()} for e in epochs}


def visualize(
    run: Run, epochs: list[int] | None = None, method: str = "auto", fps: float = 2.0
) -> list[Path]:
    """Write figures/embed/epoch_XXXX.png per epoch and figures/embed/embed.gif; returns their paths."""
    data = _features(run, sorted(set(epochs)) if epochs else None)
    out = run.path / "figures" / "embed"
    out.mkdir(parents=True, exist_ok=True)
    num_classes = (
        int(
            max(
                a[f"{s}_labels"].max() for a in data.values() for s in ("train", "test") if f"{s}_labels" in a
            )
        )
        + 1
    )
    cmap = plt.get_cmap("tab10" if num_classes <= 10 else "tab20")
    pngs = []
    for epoch, arrays in data.items():
        splits = [s for s in ("train", "test") if f"{s}_features" in arrays]
        fig, axes = plt.subplots(
            1, len(splits), figsize=(5.5 * len(splits), 5), squeeze=False, constrained_layout=True
        )
        for ax, split in zip(axes.flat, splits, strict=False):
            xy, used = embed_2d(arrays[f"{split}_features"], method, seed=epoch)
            labels = arrays[f"{split}_labels"]
            for k in range(num_classes):
                pts = xy[labels == k]
                ax.scatter(pts[:, 0], pts[:, 1], s=6, color=cmap(k % cmap.N), label=f"class {k}")
            ax.set_title(f"{split} features, epoch {epoch} ({used})")
            ax.grid(alpha=0.3)
        axes.flat[-1].legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1, 0.5))
        path = out / f"epoch_{epoch:04d}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        pngs.append(path)
    frames = [Image.open(p).convert("RGB") for p in pngs]
    gif = out / "embed.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    return [*pngs, gif]
