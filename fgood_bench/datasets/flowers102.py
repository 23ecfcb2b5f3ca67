"""Oxford Flowers-102: 102 classes, official train 1,020 / val 1,020 / test 6,149.

Layout of the three downloads unpacked side by side (torchvision expects them in ``flowers-102/``)::

    <root>/
      jpg/image_00001.jpg ... image_08189.jpg
      imagelabels.mat     labels (1, 8189) uint8, class of image i (1-based) in column i, values 1..102
      setid.mat           trnid, valid, tstid: 1-based image ids (unsorted, uint16)

Parsed as ``torchvision.datasets.Flowers102`` does (``loadmat(..., squeeze_me=True)``, label
minus one, rows in the order of the ids in ``setid.mat``), without its md5 checks. The download
has no class-name file; the names are torchvision's list (index k = label value k + 1).
"""

from __future__ import annotations

from functools import cached_property
from importlib import resources

import numpy as np

from fgood_bench.datasets.base import DatasetAdapter, SplitRecords
from fgood_bench.datasets.matfile import integers

SPLIT_VARIABLES = {"train": "trnid", "val": "valid", "test": "tstid"}


def flowers102_class_names() -> list[str]:
    text = resources.files("fgood_bench.datasets").joinpath("resources/flowers102_classes.txt").read_text("utf-8")
    return text.splitlines()


class Flowers102(DatasetAdapter):
    name = "flowers102"
    title = "Oxford Flowers-102"
    splits = ("train", "val", "test")
    root_candidates = ("", "flowers-102", "flowers102", "102flowers")
    markers = ("imagelabels.mat", "setid.mat")

    def read_classes(self) -> list[str]:
        return flowers102_class_names()

    @cached_property
    def _labels(self) -> np.ndarray:
        path = self.root / "imagelabels.mat"
        labels = integers(path, "labels", self.mat("imagelabels.mat", ("labels",))["labels"], self.doc)
        bad = np.flatnonzero((labels < 1) | (labels > 102))
        if bad.size:
            raise self.error(path, f"labels[{bad[0]}] = {labels[bad[0]]} out of range 1..102")
        return labels

    @cached_property
    def _split_ids(self) -> dict[str, np.ndarray]:
        path = self.root / "setid.mat"
        content = self.mat("setid.mat", tuple(SPLIT_VARIABLES.values()))
        return {split: integers(path, var, content[var], self.doc) for split, var in SPLIT_VARIABLES.items()}

    def read_split(self, split: str, classes: list[str]) -> SplitRecords:
        path = self.root / "setid.mat"
        variable = SPLIT_VARIABLES[split]
        ids = self._split_ids[split]
        bad = np.flatnonzero((ids < 1) | (ids > self._labels.size))
        if bad.size:
            raise self.error(path, f"{variable}[{bad[0]}] = {ids[bad[0]]} is not an image id 1..{self._labels.size}")
        return SplitRecords(
            paths=[f"jpg/image_{image_id:05d}.jpg" for image_id in ids.tolist()],
            labels=self._labels[ids - 1] - 1,
            origin=lambda i: ("setid.mat", f"{variable}[{i}]"),
        )
