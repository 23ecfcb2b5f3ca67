"""Stanford Cars (Cars196): 196 classes, official train 8,144 / test 8,041.

Two official distributions, both read here:

* the split distribution (the layout torchvision expects in ``stanford_cars/``)::

      <root>/devkit/cars_meta.mat            class_names (1, 196): index k <-> class id k + 1
      <root>/devkit/cars_train_annos.mat     annotations: bbox_x1, bbox_y1, bbox_x2, bbox_y2, class, fname
      <root>/cars_test_annos_withlabels.mat  test labels (released later; also accepted in devkit/)
      <root>/cars_train/00001.jpg ...        the Kaggle mirror nests one level deeper:
      <root>/cars_test/00001.jpg ...         cars_train/cars_train/*.jpg — found as well

* the all-in-one distribution: ``cars_annos.mat`` (annotations with ``relative_im_path``,
  ``class``, ``test``; plus ``class_names``) and ``car_ims/000001.jpg ... 016185.jpg``.

Class ids in the ``.mat`` files are 1-based; class index ``k`` is ``class_names[k]``, as
``torchvision.datasets.StanfordCars`` parses them (``class - 1``), without its md5 checks.
"""

from __future__ import annotations

from pathlib import Path

from fgood_bench.datasets.base import DatasetAdapter, SplitAbsent, SplitRecords
from fgood_bench.datasets.matfile import strings, struct_field

TEST_LABEL_FILES = ("cars_test_annos_withlabels.mat", "devkit/cars_test_annos_withlabels.mat")


class StanfordCars(DatasetAdapter):
    name = "stanford_cars"
    title = "Stanford Cars"
    splits = ("train", "test")
    root_candidates = ("", "stanford_cars", "stanford-cars")
    markers = ("devkit/cars_meta.mat or cars_annos.mat",)

    def is_canonical_root(self, path: Path) -> bool:
        return (path / "devkit" / "cars_meta.mat").exists() or (path / "cars_annos.mat").exists()

    @property
    def all_in_one(self) -> bool:
        if (self.root / "devkit" / "cars_meta.mat").exists():
            return False
        self._refuse_split_images_without_devkit()
        return True

    def _refuse_split_images_without_devkit(self) -> None:
        """One line instead of every ``car_ims/`` image reported missing: split-distribution image
        folders without the devkit (the Kaggle copy ships ``cars_annos.mat`` and ``cars_train/`` but no
        ``devkit/``) are not the all-in-one distribution."""
        if (self.root / "car_ims").is_dir():
            return
        found = [folder for folder in ("cars_train", "cars_test") if (self.root / folder).is_dir()]
        if found:
            raise self.error(self.root / "devkit" / "cars_meta.mat",
                             f"file is missing ({found[0]}/ found without car_ims/: add devkit/ from car_devkit.tgz "
                             "and cars_test_annos_withlabels.mat)")

    def read_classes(self) -> list[str]:
        relpath = "cars_annos.mat" if self.all_in_one else "devkit/cars_meta.mat"
        path = self.root / relpath
        classes = strings(path, "class_names", self.mat(relpath, ("class_names",))["class_names"], self.doc)
        self.class_origin = lambda i: (relpath, f"class_names[{i}]")  # unique names: the shared check
        return classes

    def read_split(self, split: str, classes: list[str]) -> SplitRecords:
        if self.all_in_one:
            return self._read_all_in_one(split, classes)
        if split == "train":
            relpath = "devkit/cars_train_annos.mat"
        else:
            found = [name for name in TEST_LABEL_FILES if self.file_present(name)]
            if not found:
                raise SplitAbsent("test labels not found (cars_test_annos_withlabels.mat, in the root or devkit/)")
            relpath = found[0]
        annos = self.root / relpath
        folder = self._image_folder(f"cars_{split}")
        records = self.mat(relpath, ("annotations",))["annotations"]
        names = struct_field(annos, records, "fname", self.doc, "str")
        labels = self._labels(annos, struct_field(annos, records, "class", self.doc, "int"), len(classes))
        return SplitRecords(paths=[f"{folder}/{name}" for name in names], labels=labels,
                            origin=lambda i: (relpath, f"annotation {i + 1}"))

    def _image_folder(self, folder: str) -> str:
        """``cars_train``, or ``cars_train/cars_train`` as in the Kaggle mirror."""
        if (self.root / folder / folder).is_dir():
            return f"{folder}/{folder}"
        if not (self.root / folder).is_dir():
            raise SplitAbsent(f"image folder {self.root / folder} not found")
        return folder

    def _labels(self, path: Path, class_ids: list, num_classes: int) -> list[int]:
        labels = []
        for position, class_id in enumerate(class_ids, 1):
            self.check_range(path, f"annotation {position}", int(class_id), 1, num_classes, "class")
            labels.append(int(class_id) - 1)
        return labels

    def _read_all_in_one(self, split: str, classes: list[str]) -> SplitRecords:
        path = self.root / "cars_annos.mat"
        records = self.mat("cars_annos.mat", ("annotations",))["annotations"]
        paths = struct_field(path, records, "relative_im_path", self.doc, "str")
        labels = self._labels(path, struct_field(path, records, "class", self.doc, "int"), len(classes))
        wanted = 1 if split == "test" else 0
        chosen = [i for i, flag in enumerate(struct_field(path, records, "test", self.doc, "int")) if flag == wanted]
        return SplitRecords(paths=[paths[i] for i in chosen], labels=[labels[i] for i in chosen],
                            origin=lambda i: ("cars_annos.mat", f"annotation {chosen[i] + 1}"))
