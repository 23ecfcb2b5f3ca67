"""Places365-Standard: 365 scene classes, official train 1,803,460 / val 36,500 (100 per class).

Layout of the official downloads (``filelist_places365-standard.tar`` plus image archives)::

    <root>/
      categories_places365.txt       /a/airfield 0 ... /z/zen_garden 364   (no final newline)
      places365_train_standard.txt   /a/airfield/00000000.jpg 0
      places365_val.txt              Places365_val_00000001.jpg 165
      val_256/Places365_val_00000001.jpg ...          (val_large/ for the high-resolution images)
      data_256/a/airfield/00000000.jpg ...               (torchvision renames it data_256_standard/)

Parsed as ``torchvision.datasets.Places365`` does (``line.split()``, leading ``/`` of train
paths stripped), without its md5 checks. Class index = the integer in the categories file;
class names are the category paths as written (``/a/arena/hockey``). Users of Places365 as an
OOD set often have only ``val_256`` and the file lists: absent splits are reported, not fatal.
The unlabelled test set is not a split here.
"""

from __future__ import annotations

from pathlib import Path

from fgood_bench.datasets.base import DatasetAdapter, SplitAbsent, SplitRecords
from fgood_bench.datasets.integrity import line_origin

LIST_FILES = {"train": "places365_train_standard.txt", "val": "places365_val.txt"}
IMAGE_FOLDERS = {
    ("train", "256"): ("data_256", "data_256_standard"),
    ("train", "large"): ("data_large", "data_large_standard"),
    ("val", "256"): ("val_256",),
    ("val", "large"): ("val_large",),
}


class Places365(DatasetAdapter):
    name = "places365"
    title = "Places365-Standard"
    splits = ("train", "val")
    root_candidates = ("", "places365", "places365_standard", "filelist_places365-standard")
    markers = ("categories_places365.txt",)
    option_names = ("variant",)

    @property
    def variant(self) -> str:
        variant = str(self.options.get("variant", "256"))
        if variant not in ("256", "large"):
            raise self.error(self.root, f"variant must be '256' or 'large', got {variant!r}")
        return variant

    def read_classes(self) -> list[str]:
        path = self.root / "categories_places365.txt"
        by_index: dict[int, str] = {}
        line_of: dict[int, int] = {}
        for lineno, line in self.lines("categories_places365.txt"):
            name, index = self.fields(path, lineno, line, 2, "<category> <index>")
            index = self.integer(path, lineno, index, "category index")
            if index in by_index:
                raise self.error(path, f"line {lineno}: index {index} used twice")
            by_index[index] = name
            line_of[index] = lineno
        if sorted(by_index) != list(range(len(by_index))):
            raise self.error(path, f"indices must run 0..{len(by_index) - 1} without gaps")
        self.class_origin = line_origin("categories_places365.txt", [line_of[i] for i in range(len(by_index))])
        return [by_index[i] for i in range(len(by_index))]

    def read_split(self, split: str, classes: list[str]) -> SplitRecords:
        folder = self._image_folder(split)
        path = self.root / LIST_FILES[split]
        if not self.file_present(LIST_FILES[split]):
            raise SplitAbsent(f"{path.name} not found next to categories_places365.txt")
        paths, labels, linenos = [], [], []
        for lineno, line in self.lines(LIST_FILES[split]):
            image, label = self.fields(path, lineno, line, 2, "<image> <label>")
            label = self.integer(path, lineno, label, "label")
            self.check_range(path, f"line {lineno}", label, 0, len(classes) - 1, "label")
            paths.append(f"{folder}/{image.lstrip('/')}")
            labels.append(label)
            linenos.append(lineno)
        return SplitRecords(paths=paths, labels=labels, origin=line_origin(LIST_FILES[split], linenos))

    def _image_folder(self, split: str) -> str:
        candidates = IMAGE_FOLDERS[(split, self.variant)]
        for folder in candidates:
            if (self.root / folder).is_dir():
                return folder
        raise SplitAbsent(f"image folder {Path(self.root, candidates[0])} not found")
