"""The resize and crop that turn an image into a network input: plain data, no torch, so that
settings, exports and the command line read it without importing the image pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from fgood_bench import paper
from fgood_bench.errors import FgoodError

RESIZE_MODES = ("square", "shorter")


@dataclass(frozen=True)
class Geometry:
    """A resize followed by a ``crop x crop`` crop.

    ``mode='square'``: ``Resize((resize, resize))``, the paper's fine-grained recipe (Appendix
    D.1, 512 then 448, as the MixOE reference's transform). ``mode='shorter'``: ``Resize(resize)``,
    the shorter side to ``resize`` with the aspect ratio kept, the ImageNet practice of Appendix
    H.2 (256 then 224).
    """

    crop: int = paper.FINE_GRAINED_CROP
    resize: int = paper.FINE_GRAINED_RESIZE
    mode: str = "square"

    def __post_init__(self):
        if self.mode not in RESIZE_MODES:
            raise FgoodError(f"resize mode {self.mode!r}: expected one of {', '.join(RESIZE_MODES)}")

    @classmethod
    def for_crop(cls, crop: int, mode: str = "square") -> "Geometry":
        """The paper's 512/448 ratio (the same as H.2's 256/224) kept for another crop size."""
        return cls(crop=crop, resize=round(crop * paper.FINE_GRAINED_RESIZE / paper.FINE_GRAINED_CROP), mode=mode)

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) after the resize, as torchvision computes it."""
        if self.mode == "square":
            return self.resize, self.resize
        if height <= width:
            return self.resize, int(self.resize * width / height)
        return int(self.resize * height / width), self.resize
