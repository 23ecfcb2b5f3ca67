"""DTD (Describable Textures Dataset): 47 classes x 120 images; 10 partitions of 40/40/40 per class.

Layout of ``dtd-r1.0.1.tar.gz``::

    dtd/
      images/<class>/<class>_NNNN.jpg         (also a stray images/waffled/.directory: ignored)
      labels/{train,val,test}{1..10}.txt      <class>/<file>, relative to images/
      imdb/imdb.mat

torchvision's ``DTD`` nests the archive one level deeper (``root/dtd/dtd``): found as well.
Class index = position in the sorted class names of the partition's label files, as
torchvision's parser numbers them (a stray folder under ``images/`` cannot shift the labels). ``partition`` (1..10, default 1) picks the files.
"""

from __future__ import annotations

from functools import cached_property

from fgood_bench.datasets.base import DatasetAdapter, SplitAbsent, SplitRecords
from fgood_bench.datasets.integrity import line_origin


class DTD(DatasetAdapter):
    name = "dtd"
    title = "Describable Textures (DTD)"
    splits = ("train", "val", "test")
    root_candidates = ("", "dtd", "dtd/dtd")
    markers = ("images", "labels")
    option_names = ("partition",)

    @property
    def partition(self) -> int:
        partition = self.options.get("partition", 1)
        if str(partition) not in {str(k) for k in range(1, 11)}:
            raise self.error(self.root, f"partition must be 1..10, got {partition!r}")
        return int(partition)

    @cached_property
    def _label_files(self) -> dict[str, list[tuple[int, str]]]:
        """split -> lines of ``labels/<split><partition>.txt``, for the files present."""
        files = {}
        for split in self.splits:
            relpath = f"labels/{split}{self.partition}.txt"
            if self.file_present(relpath):
                files[split] = self.lines(relpath)
        return files

    def read_classes(self) -> list[str]:
        classes = set()
        for split, lines in self._label_files.items():
            path = self.root / f"labels/{split}{self.partition}.txt"
            for lineno, line in lines:
                parts = line.split("/")
                if len(parts) != 2 or not all(parts):
                    raise self.error(path, f"line {lineno}: expected <class>/<image>, got {line!r}")
                classes.add(parts[0])
        return sorted(classes)

    def read_split(self, split: str, classes: list[str]) -> SplitRecords:
        if split not in self._label_files:
            raise SplitAbsent(f"{self.root}/labels/{split}{self.partition}.txt not found")
        index = {name: i for i, name in enumerate(classes)}
        lines = [line for _, line in self._label_files[split]]
        return SplitRecords(paths=[f"images/{line}" for line in lines], labels=[index[line.split("/")[0]] for line in lines],
                            origin=line_origin(f"labels/{split}{self.partition}.txt", [n for n, _ in self._label_files[split]]))
