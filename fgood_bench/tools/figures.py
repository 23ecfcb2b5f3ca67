"""Saving figures: one matplotlib figure as PNG, PDF and/or SVG, the same bytes on every run.

Every command that draws (``evaluate --plots``, ``plot``, ``cam``, ``build-splits`` with several
rankings, ``audit-leakage``, ``sweep``, ``study random-splits``) takes a :class:`FigureFormat`
(``--figure-format``, ``--dpi``) and saves through :func:`render_figure`. The files carry no time
stamp, no matplotlib version and no random ids (SVG's ``svg.hashsalt`` is fixed), so the same
input gives byte-identical files. ``dpi`` None keeps each figure's own resolution (120 for the
plots, 100 for ``cam``); in PDF and SVG it sets the resolution of the raster images they embed
(photographs, CAM overlays, heat maps), lines and text stay vectors.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from fgood_bench.errors import FgoodError

FORMATS = ("png", "pdf", "svg")
SVG_HASHSALT = "fgood-bench"  # the ids SVG gives clip paths and glyphs: fixed, not random per run
# no time stamps, tools or versions in the files
METADATA = {"png": {"Software": None},
            "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
            "svg": {"Creator": None, "Date": None}}


@dataclass(frozen=True)
class FigureFormat:
    """The file formats a figure is saved in (in this order) and its resolution (None: the figure's own)."""

    formats: tuple[str, ...] = ("png",)
    dpi: float | None = None

    def __post_init__(self) -> None:
        formats = tuple(dict.fromkeys(str(f).strip().lower() for f in self.formats))
        bad = [f for f in formats if f not in FORMATS]
        if not formats or bad:
            raise FgoodError(f"--figure-format {','.join(map(str, self.formats)) or '(none)'}: choose from "
                             f"{', '.join(FORMATS)}")
        if self.dpi is not None and not 0 < self.dpi < float("inf"):
            raise FgoodError(f"--dpi {self.dpi}: must be a positive number")
        object.__setattr__(self, "formats", formats)

    def names(self, stem: str) -> list[str]:
        """``stem.png``, ``stem.pdf``, ... in this object's order."""
        return [f"{stem}.{kind}" for kind in self.formats]

    def record(self) -> dict:
        return {"formats": list(self.formats), "dpi": self.dpi}


PNG = FigureFormat()  # the default of the Python API: PNG at each figure's own dpi


def every_format(*stems: str) -> tuple[str, ...]:
    """The names a figure may have in any format: what a command owns in its folder (an earlier
    run's PDF is recognised and cleared as its own, never left beside a new PNG)."""
    return tuple(f"{stem}.{kind}" for stem in stems for kind in FORMATS)


def render_figure(fig, stem: str, figure_format: FigureFormat = PNG) -> dict[str, bytes]:
    """``{stem.KIND: bytes}`` of the matplotlib figure for each format, deterministically; closes the figure."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    files = {}
    try:
        with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT}):
            for kind in figure_format.formats:
                buffer = io.BytesIO()
                fig.savefig(buffer, format=kind, dpi=figure_format.dpi or "figure", metadata=METADATA[kind])
                files[f"{stem}.{kind}"] = buffer.getvalue()
    finally:
        plt.close(fig)
    return files


def image_figure(pixels, dpi: float = 100.0):
    """A figure that shows a uint8 (H, W, 3) image edge to edge at ``dpi``: saved as PNG at that dpi,
    its pixels are the image's own (for pictures drawn with PIL, e.g. a contact sheet)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height, width = pixels.shape[:2]
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(pixels, interpolation="none")  # in PDF and SVG: the image itself, not resampled
    ax.set_axis_off()
    return fig
