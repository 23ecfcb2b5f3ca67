"""FGVC-Aircraft 2013b: 100 variants (70 families, 30 manufacturers), train / val / test ~3,333 each.

Layout of ``fgvc-aircraft-2013b.tar.gz``::

    fgvc-aircraft-2013b/
      data/images/<7-digit id>.jpg
      data/variants.txt  families.txt  manufacturers.txt     one class name per line
      data/images_variant_{train,val,test}.txt               <7-digit id> <class name, may hold spaces>
      data/images_family_*.txt  data/images_manufacturer_*.txt

Parsed as ``torchvision.datasets.FGVCAircraft`` does: classes are the lines of ``variants.txt``
(or ``families.txt`` / ``manufacturers.txt`` with ``level``) in file order, each label line is
split at its first space into image id and class name. Ids keep their leading zeros. Every image has a ~20-pixel copyright
banner at the bottom; cropping it is left to the transforms.
"""

from __future__ import annotations

from fgood_bench.datasets.base import DatasetAdapter, SplitAbsent, SplitRecords
from fgood_bench.datasets.integrity import line_origin

CLASS_FILES = {"variant": "variants.txt", "family": "families.txt", "manufacturer": "manufacturers.txt"}


class FGVCAircraft(DatasetAdapter):
    name = "fgvc_aircraft"
    title = "FGVC-Aircraft 2013b"
    splits = ("train", "val", "test")
    root_candidates = ("", "fgvc-aircraft-2013b")
    markers = ("data/images", "data/variants.txt")
    option_names = ("level",)

    @property
    def level(self) -> str:
        level = self.options.get("level", "variant")
        if level not in CLASS_FILES:
            raise self.error(self.root, f"level must be one of {', '.join(CLASS_FILES)}, got {level!r}")
        return level

    def read_classes(self) -> list[str]:
        relpath = f"data/{CLASS_FILES[self.level]}"
        lines = self.lines(relpath)
        self.class_origin = line_origin(relpath, [lineno for lineno, _ in lines])  # unique names: the shared check
        return [line for _, line in lines]

    def read_split(self, split: str, classes: list[str]) -> SplitRecords:
        relpath = f"data/images_{self.level}_{split}.txt"
        path = self.root / relpath
        if not self.file_present(relpath):
            raise SplitAbsent(f"{path} not found")
        index = {name: i for i, name in enumerate(classes)}
        paths, labels, linenos = [], [], []
        for lineno, line in self.lines(relpath):
            image_id, _, label = line.partition(" ")
            if not label:
                raise self.error(path, f"line {lineno}: expected '<image id> <class name>', got {line!r}")
            if label not in index:
                raise self.error(path, f"line {lineno}: class {label!r} is not in data/{CLASS_FILES[self.level]}")
            paths.append(f"data/images/{image_id}.jpg")
            labels.append(index[label])
            linenos.append(lineno)
        return SplitRecords(paths=paths, labels=labels, origin=line_origin(relpath, linenos))
