"""What every figure shares (plots.py, lm.py, embed.py, board.py): the paper style, the palette, panel sizes,
the legend of settings, the short axis label of a metric and its long caption line, and saving. Figures keep
their text short: an axis names a metric by its mathtext symbol from the metric table (metrics/table.py), the
description goes to the caption `nclab plot` prints and to TensorBoard."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from nclab.files import replace
from nclab.metrics import table

if TYPE_CHECKING:
    from nclab.report.groups import Group

__all__ = [
    "COLUMN", "LINESTYLES", "PALETTE", "PANEL_HEIGHT", "STYLE", "caption_line", "color", "label", "legend",
    "linestyle", "log_scale", "paper_style", "pick_evenly", "render_png", "save", "subplots", "wrap",
]  # fmt: skip

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
COLUMN = 3.4  # inches: one column of a two-column paper; figures with 3 panel columns span both (7 in)
PANEL_HEIGHT = 1.7
LINESTYLES = ["-", "--", ":", "-."]  # the 2nd key of a panel (test_acc) and groups beyond the palette
FONT_SIZE = 7
STYLE: dict[str, Any] = {
    "font.family": "serif",
    "font.serif": ["DejaVu Serif"],
    "mathtext.fontset": "dejavuserif",
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE,
    "axes.labelsize": FONT_SIZE,
    "xtick.labelsize": 6.5,
    "ytick.labelsize": 6.5,
    "legend.fontsize": 6.5,
    "lines.linewidth": 1.2,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "savefig.dpi": 300,
    "pdf.fonttype": 42,  # TrueType in PDF, as publishers ask
    "svg.fonttype": "none",  # SVG text stays text
}


@contextmanager
def paper_style() -> Iterator[None]:
    """The paper style (serif, 7 pt at one-column width, colour-blind-safe cycle): build and save in it."""
    with plt.rc_context(STYLE):
        yield


def subplots(n: int, cols: int | None = None) -> tuple[Figure, list[Axes]]:
    """`n` panels, `cols` per row (default up to 3): one column wide for <= 2 panel columns, else two."""
    cols = cols or min(3, n)
    rows = -(-n // cols)
    width = COLUMN if cols <= 2 else 2 * COLUMN
    fig, axes = plt.subplots(
        rows, cols, figsize=(width, PANEL_HEIGHT * rows + 0.3), squeeze=False, layout="constrained"
    )
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def legend(fig: Figure, groups: list[Group], band: str, extra: list[tuple[str, str]] = ()) -> None:
    """One legend above the panels: a line per group (over its band with `n seeds` when seeds fold into
    one line), then the line styles of multi-key panels; as many columns as the figure's width holds."""
    shown = len(groups) > 1 or len(groups[0].runs) > 1
    handles: list[Any] = []
    labels = []
    for i, group in enumerate(groups if shown else []):
        line = plt.Line2D([], [], color=color(i), linestyle=linestyle(i, 0))
        seeds = len(group.runs) > 1
        handles.append(
            (Patch(color=color(i), alpha=0.2, linewidth=0), line) if seeds and band != "none" else line
        )
        labels.append(group.label + (f" ({len(group.runs)} seeds)" if seeds else ""))
    for style, text in extra:
        handles.append(plt.Line2D([], [], color="0.3", linestyle=style))
        labels.append(text)
    if handles:
        fits = int(fig.get_figwidth() * 17 // (max(len(t.replace("$", "")) for t in labels) + 6))
        fig.legend(handles, labels, loc="outside upper center", ncols=max(1, min(fits, 4)), frameon=False)


def color(i: int) -> str:
    """The i-th setting's colour."""
    return PALETTE[i % len(PALETTE)]


def linestyle(group: int, key: int) -> str:
    """Solid for a panel's first key, dashed for its second; groups beyond the palette shift the style."""
    return LINESTYLES[(key + group // len(PALETTE)) % len(LINESTYLES)]


def log_scale(ax: Axes, which: str) -> None:
    """A log `which` ("x" or "y") axis with labelled decades, or 1-2-5 ticks as plain numbers when the data
    span under two decades (so the axis has numbers to read); minor ticks stay unlabelled (they collide)."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    low, high = getattr(ax, f"get_{which}lim")()
    if low > 0 and high / low < 100:
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0), numticks=12))
        axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(NullFormatter())


def label(key: str) -> str:
    """The axis label of a metrics.jsonl key: its symbol from the metric table (`$\\mathcal{NC}_1$`); a family
    member adds what the `*` stands for (`$s_{i,y_i}$ (q05)`, `$\\mathcal{NC}_1$ (layer3)`); the key itself
    when the declaration has no symbol."""
    entry = table.metric(key)
    if not entry.symbol:
        return key
    if "*" not in entry.key:
        return entry.symbol
    head, tail = entry.key.split("*")
    return f"{entry.symbol} ({key[len(head) : len(key) - len(tail)]})"


def caption_line(key: str) -> str:
    """`label (key): description [source]`, the long form of an axis label for a figure's caption."""
    entry = table.metric(key)
    source = f" [{entry.source}]" if entry.source else ""
    return f"{label(key)} ({key}): {entry.description}{source}"


def wrap(text: str, inches: float, size: float = FONT_SIZE) -> str:
    """`text` broken into lines that fit `inches` at font `size` (a serif character averages ~0.55 em)."""
    return "\n".join(textwrap.wrap(text, max(8, int(inches * 72 / (0.55 * size)))))


def pick_evenly(epochs: list[int], count: int) -> list[int]:
    """`count` evenly spaced entries of a sorted list, first and last included."""
    if len(epochs) <= count:
        return epochs
    return [epochs[round(i * (len(epochs) - 1) / (count - 1))] for i in range(count)]


def save(fig: Figure, path: Path) -> Path:
    """Write the figure atomically (files.replace; format from the suffix: vector for pdf/svg, 300 dpi png)
    and close it."""
    try:
        with paper_style():
            replace(path, lambda tmp: fig.savefig(tmp, format=path.suffix[1:]))
    finally:
        plt.close(fig)
    return path


def render_png(fig: Figure, dpi: int = 150) -> bytes:
    """The figure as PNG bytes (GIF frames), without closing it."""
    buffer = BytesIO()
    with paper_style():
        fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
