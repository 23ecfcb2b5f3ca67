"""MINC-2500 (Materials in Context): 23 materials x 2,500 patches; 5 partitions of 85:5:10.

Layout of ``minc-2500.tar.gz``::

    minc-2500/
      categories.txt                 23 names, alphabetical; index = line number - 1
      images/<category>/<category>_NNNNNN.jpg
      labels/train{1..5}.txt  labels/validate{1..5}.txt  labels/test{1..5}.txt
                                     one path per line, relative to minc-2500/ (images/brick/...)

The class is the image's parent folder. ``partition`` (1..5, default 1) picks the label files;
split ``val`` reads ``validate<k>.txt``. Per partition and class: 2,125 / 125 / 250 images.
"""

from __future__ import annotations

from fgood_bench.datasets.base import DatasetAdapter, SplitAbsent, SplitRecords
from fgood_bench.datasets.integrity import line_origin

LIST_PREFIXES = {"train": "train", "val": "validate", "test": "test"}


class MINC2500(DatasetAdapter):
    name = "minc2500"
    title = "MINC-2500"
    splits = ("train", "val", "test")
    root_candidates = ("", "minc-2500", "minc2500")
    markers = ("categories.txt", "images")
    option_names = ("partition",)

    @property
    def partition(self) -> int:
        partition = self.options.get("partition", 1)
        if str(partition) not in {"1", "2", "3", "4", "5"}:
            raise self.error(self.root, f"partition must be 1..5, got {partition!r}")
        return int(partition)

    def read_classes(self) -> list[str]:
        lines = self.lines("categories.txt")
        self.class_origin = line_origin("categories.txt", [lineno for lineno, _ in lines])  # unique names: the shared check
        return [line for _, line in lines]

    def read_split(self, split: str, classes: list[str]) -> SplitRecords:
        relpath = f"labels/{LIST_PREFIXES[split]}{self.partition}.txt"
        path = self.root / relpath
        if not self.file_present(relpath):
            raise SplitAbsent(f"{path} not found")
        index = {name: i for i, name in enumerate(classes)}
        paths, labels, linenos = [], [], []
        for lineno, line in self.lines(relpath):
            parts = line.split("/")
            if len(parts) != 3 or parts[0] != "images":
                raise self.error(path, f"line {lineno}: expected images/<category>/<image>, got {line!r}")
            if parts[1] not in index:
                raise self.error(path, f"line {lineno}: category {parts[1]!r} is not in categories.txt")
            paths.append(line)
            labels.append(index[parts[1]])
            linenos.append(lineno)
        return SplitRecords(paths=paths, labels=labels, origin=line_origin(relpath, linenos))
