"""CUB-200-2011 (Caltech-UCSD Birds): 200 classes, official train 5,994 / test 5,794.

Layout of ``CUB_200_2011.tgz``::

    CUB_200_2011/
      classes.txt               <class_id> <NNN.Class_Name>          (1-based)
      images.txt                <image_id> <class folder>/<file>.jpg (1-based)
      image_class_labels.txt    <image_id> <class_id>
      train_test_split.txt      <image_id> <1 = train, 0 = test>
      images/<NNN.Class_Name>/<file>.jpg

Class index ``k`` is class id ``k + 1`` of ``classes.txt``; the class name is the folder name
without its ``NNN.`` prefix. torchvision has no CUB parser.
"""

from __future__ import annotations

from functools import cached_property

from fgood_bench.datasets.base import DatasetAdapter, SplitRecords
from fgood_bench.datasets.integrity import line_origin


class CUB(DatasetAdapter):
    name = "cub"
    title = "CUB-200-2011"
    splits = ("train", "test")
    root_candidates = ("", "CUB_200_2011")
    markers = ("images.txt", "images")

    def read_classes(self) -> list[str]:
        path = self.root / "classes.txt"
        folders, linenos = [], []
        for lineno, line in self.lines("classes.txt"):
            class_id, folder = self.fields(path, lineno, line, 2, "<class_id> <NNN.Class_Name>")
            if self.integer(path, lineno, class_id, "class id") != len(folders) + 1:
                raise self.error(path, f"line {lineno}: class ids must run 1, 2, 3, ... in order, got {class_id}")
            folders.append(folder)
            linenos.append(lineno)
        self._class_folders = folders
        self.class_origin = line_origin("classes.txt", linenos)
        return [folder.split(".", 1)[-1] for folder in folders]

    def read_split(self, split: str, classes: list[str]) -> SplitRecords:
        wanted = 1 if split == "train" else 0
        chosen = [row for row in self._rows.values() if row[2] == wanted]
        return SplitRecords(paths=[r[0] for r in chosen], labels=[r[1] for r in chosen],
                            origin=line_origin("images.txt", [r[3] for r in chosen]))

    @cached_property
    def _rows(self) -> dict[int, tuple[str, int, int, int]]:
        """image id -> (path, class index, is_training, line of images.txt), joined across the three id files."""
        images = self._id_table("images.txt", "<image_id> <class folder>/<file>")
        labels = self._id_table("image_class_labels.txt", "<image_id> <class_id>")
        is_train = self._id_table("train_test_split.txt", "<image_id> <is_training_image>")
        num_classes = len(self._class_folders)
        joined = {}
        for image_id, (lineno, relpath) in images.items():
            for name, table in (("image_class_labels.txt", labels), ("train_test_split.txt", is_train)):
                if image_id not in table:
                    raise self.error(self.root / name, f"no line for image id {image_id} of images.txt")
            label_line, class_id = labels[image_id]
            label_path = self.root / "image_class_labels.txt"
            class_id = self.integer(label_path, label_line, class_id, "class id")
            self.check_range(label_path, f"line {label_line}", class_id, 1, num_classes, "class id")
            flag_line, flag = is_train[image_id]
            if flag not in ("0", "1"):
                raise self.error(self.root / "train_test_split.txt", f"line {flag_line}: expected 1 or 0, got {flag!r}")
            folder = relpath.split("/", 1)[0]
            if folder != self._class_folders[class_id - 1]:
                raise self.error(
                    self.root / "images.txt",
                    f"line {lineno}: image in folder {folder!r} but image_class_labels.txt gives class "
                    f"{class_id} ({self._class_folders[class_id - 1]})",
                )
            joined[image_id] = (f"images/{relpath}", class_id - 1, int(flag), lineno)
        for name, table in (("image_class_labels.txt", labels), ("train_test_split.txt", is_train)):
            extra = set(table) - set(images)
            if extra:
                raise self.error(self.root / name, f"image id {min(extra)} is not in images.txt")
        return joined

    def _id_table(self, relpath: str, expected: str) -> dict[int, tuple[int, str]]:
        path = self.root / relpath
        table: dict[int, tuple[int, str]] = {}
        for lineno, line in self.lines(relpath):
            image_id, value = self.fields(path, lineno, line, 2, expected)
            key = self.integer(path, lineno, image_id, "image id")
            if key in table:
                raise self.error(path, f"line {lineno}: image id {key} appears twice")
            table[key] = (lineno, value)
        return table
