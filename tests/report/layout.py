"""The layout check of every figure: `collisions(fig, fmt)` draws the figure as `fmt` would be written and
lists every pair of text artists (tick labels, axis labels, titles, annotations, legends, colour-bar labels)
that overlap, every text over another panel's axes, every in-axes legend over drawn data and every text
outside the figure, measured on window extents (matplotlib's own boxes, in points). A new figure kind or a
metric with a long symbol gets checked by calling it."""

from __future__ import annotations

from io import BytesIO
from itertools import combinations

import numpy as np
from matplotlib import rcParams
from matplotlib.axes import Axes
from matplotlib.backend_bases import DrawEvent
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from nclab.report.style import paper_style

TOLERANCE = 0.5  # points: boxes that touch within half a point do not collide


def _ticklabels(ax: Axes) -> list[Text]:
    """Tick labels drawn on the axes (ticks outside the view limits are not drawn)."""
    shown = []
    for axis in (ax.xaxis, ax.yaxis):
        low, high = sorted(axis.get_view_interval())
        for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
            inside = low - 1e-9 * abs(high - low) <= tick.get_loc() <= high + 1e-9 * abs(high - low)
            shown += [t for t in (tick.label1, tick.label2) if inside and t.get_visible()]
    return shown


def _texts(fig: Figure) -> list[tuple[str, Axes | None, Text | Legend]]:
    """(name, owning axes or None for figure-level artists, artist) of every visible, non-empty text."""
    found: list[tuple[str, Axes | None, Text | Legend]] = []
    for ax in _panels(fig):
        named = [(f"title {t.get_text()!r}", t) for t in (ax.title, ax._left_title, ax._right_title)]
        named += [("x label", ax.xaxis.label), ("y label", ax.yaxis.label)]
        named += [(f"tick {t.get_text()!r}", t) for t in _ticklabels(ax)]
        named += [(f"text {t.get_text()!r}", t) for t in ax.texts]
        found += [(f"{_name(ax)}: {n}", ax, t) for n, t in named if t.get_visible() and t.get_text()]
        if ax.get_legend() is not None:
            found.append((f"{_name(ax)}: legend", ax, ax.get_legend()))
    found += [(f"figure legend {i}", None, legend) for i, legend in enumerate(fig.legends)]
    found += [
        (f"figure text {t.get_text()!r}", None, t) for t in fig.texts if t.get_visible() and t.get_text()
    ]
    for name in ("_suptitle", "_supxlabel", "_supylabel"):
        text = getattr(fig, name, None)
        if text is not None and text.get_visible() and text.get_text():
            found.append((name.strip("_"), None, text))
    return found


def _panels(fig: Figure) -> list[Axes]:
    """Axes that are drawn (panels and colour bars; switched-off spare panels are not)."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.axison]


def _name(ax: Axes) -> str:
    label = ax.get_label() or ""
    return f"axes {ax.get_figure().axes.index(ax)}" + (f" ({label})" if label and label[0] != "_" else "")


def _meet(a: Bbox, b: Bbox) -> bool:
    """The boxes share an area wider and taller than the tolerance."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > TOLERANCE and min(a.y1, b.y1) - max(a.y0, b.y0) > TOLERANCE


def _data_under(legend: Legend, ax: Axes, box: Bbox, scale: float) -> bool:
    """Any point of a drawn line or band outline of `ax` (vertices and 20 points along each segment) inside
    the in-axes legend's box."""
    points = [line.get_xydata() for line in ax.get_lines() if len(line.get_xdata())]
    points += [p.vertices for c in ax.collections for p in c.get_paths()]
    steps = np.linspace(0, 1, 21)[:, None, None]
    for xy in points:
        xy = np.asarray(xy, float)
        xy = xy[np.isfinite(xy).all(1)]
        if len(xy):
            shown = ax.transData.transform(xy) * scale
            shown = (shown[:-1] + steps * (shown[1:] - shown[:-1])).reshape(-1, 2) if len(xy) > 1 else shown
            inside = (
                (shown[:, 0] > box.x0)
                & (shown[:, 0] < box.x1)
                & (shown[:, 1] > box.y0)
                & (shown[:, 1] < box.y1)
            )
            if inside.any():
                return True
    return False


class _Drawn(Exception):
    """Raised after the save's last draw: what follows (PDF font subsets, PNG encoding) moves no text."""


def collisions(fig: Figure, fmt: str = "png") -> list[str]:
    """Every layout fault of `fig` saved as `fmt`, one line each (an empty list is a clean figure): measured
    in the draws of that save (savefig draws once more first when a layout engine or a tight bounding box
    needs the text sizes, as matplotlib's print_figure does), with that format's renderer and resolution;
    the save stops after its last draw, before the file is written."""
    faults: list[str] = []
    with paper_style():
        draws = [1 + (fig.get_layout_engine() is not None or rcParams["savefig.bbox"] == "tight")]

        def measure(event: DrawEvent) -> None:
            faults.extend(_faults(fig, event.renderer))
            draws[0] -= 1
            if not draws[0]:
                raise _Drawn

        cid = fig.canvas.mpl_connect("draw_event", measure)
        try:
            fig.savefig(BytesIO(), format=fmt)
        except _Drawn:
            pass
        finally:
            fig.canvas.mpl_disconnect(cid)
    return faults


def _faults(fig: Figure, renderer) -> list[str]:
    scale = 72 / fig.dpi  # display pixels -> points
    boxes = [(n, ax, t, Bbox(t.get_window_extent(renderer).get_points() * scale)) for n, ax, t in _texts(fig)]
    axes = [(ax, Bbox(ax.get_window_extent(renderer).get_points() * scale)) for ax in _panels(fig)]
    page = Bbox.from_bounds(0, 0, fig.get_figwidth() * 72, fig.get_figheight() * 72)
    faults = []
    for name, _, _, box in boxes:
        if (
            box.x0 < page.x0 - TOLERANCE
            or box.y0 < page.y0 - TOLERANCE
            or box.x1 > page.x1 + TOLERANCE
            or (box.y1 > page.y1 + TOLERANCE)
        ):
            faults.append(f"{name} lies outside the figure")
    for (n1, _, _, b1), (n2, _, _, b2) in combinations(boxes, 2):
        if _meet(b1, b2):
            faults.append(f"{n1} overlaps {n2}")
    for name, owner, text, box in boxes:
        faults += [
            f"{name} overlaps {_name(ax)}" for ax, frame in axes if ax is not owner and _meet(box, frame)
        ]
        if isinstance(text, Legend) and owner is not None and _data_under(text, owner, box, scale):
            faults.append(f"{name} covers data")
    return faults
