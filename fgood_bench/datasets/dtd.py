"""DTD (Describable Textures Dataset): 47 classes x 120 images; 10 partitions of 40/40/40 per class.

Layout of ``dtd-r1.0.1.tar.gz``::

    dtd/
      images/<class>/<class>_NNNN.jpg         (also a stray images/waffled/.directory: ignored)
      labels/{train,val,test}{1..10}.txt      <class>/<file>, relative to images/
      imdb/imdb.mat

torchvision's ``DTD`` nests the archive one level deeper (``root/dtd/dtd``): found as well.
Class index = position in the sorted class-folder names, which is what torchvision's parser
yields (sorted classes of the label file). ``partition`` (1..10, default 1) picks the files.
"""

from __future__ import annotations

from functools import cached_property

from fgood_bench.datasets.base import DatasetAdapter, SplitAbsent, SplitRecords, list_subfolders


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
    def _class_folders(self) -> list[str]:
        folders = list_subfolders(self.root / "images")
        if not folders:
            raise self.error(self.root / "images", "no class folders")
        return folders

    def read_classes(self) -> list[str]:
        return self._class_folders

    def read_split(self, split: str, classes: list[str]) -> SplitRecords:
        relpath = f"labels/{split}{self.partition}.txt"
        path = self.root / relpath
        if not path.is_file():
            raise SplitAbsent(f"{path} not found")
        index = {name: i for i, name in enumerate(classes)}
        paths, labels = [], []
        for lineno, line in self.lines(relpath):
            parts = line.split("/")
            if len(parts) != 2:
                raise self.error(path, f"line {lineno}: expected <class>/<image>, got {line!r}")
            if parts[0] not in index:
                raise self.error(path, f"line {lineno}: class {parts[0]!r} has no folder in images/")
            paths.append(f"images/{line}")
            labels.append(index[parts[0]])
        return SplitRecords(paths=paths, labels=labels)
