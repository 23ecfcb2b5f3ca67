"""ImageNet-1k (ILSVRC2012): 1,000 classes, official train 1,281,167 / val 50,000.

Layouts read:

* the class-folder layout (torchvision ``ImageNet`` / ``ImageFolder``)::

      <root>/train/<wnid>/<wnid>_<n>.JPEG     <root>/val/<wnid>/ILSVRC2012_val_<8 digits>.JPEG

* the Kaggle layout: ``<root>/ILSVRC/Data/CLS-LOC/{train/<wnid>/, val/}`` with the flat val
  folder labelled by ``<root>/LOC_val_solution.csv`` (``ImageId,PredictionString``, the
  prediction string starting with the wnid);
* a flat ``val/`` (the raw ``ILSVRC2012_img_val.tar``) labelled by torchvision's ``meta.bin``
  (read with ``torchvision.datasets.imagenet.load_meta_file``) or by the devkit
  (``ILSVRC2012_devkit_t12/data/meta.mat`` and ``ILSVRC2012_validation_ground_truth.txt``,
  whose ILSVRC2012_IDs are not the sorted order and are mapped through ``meta.mat``).

Class index = position of the wnid in sorted order (n01440764 -> 0 ... n15075141 -> 999), as
ImageFolder yields; the class name is the wnid (ImageNet has duplicate names: two ``crane``).
The 1,000 wnids and their names ship with fgood-bench (:func:`imagenet_synsets`).
"""

from __future__ import annotations

import csv
from functools import cached_property
from importlib import resources
from pathlib import Path

import pyarrow as pa

from fgood_bench.datasets.base import DatasetAdapter, SplitAbsent, SplitRecords, list_images, list_subfolders
from fgood_bench.datasets.matfile import struct_field

KAGGLE_DATA = "ILSVRC/Data/CLS-LOC"
DEVKIT = "ILSVRC2012_devkit_t12/data"


def imagenet_synsets() -> dict[str, str]:
    """The 1,000 ImageNet-1k wnids in sorted order, each with its comma-separated names."""
    text = resources.files("fgood_bench.datasets").joinpath("resources/imagenet_synsets.txt").read_text("utf-8")
    return dict(line.split(" ", 1) for line in text.splitlines())


class ImageNet(DatasetAdapter):
    name = "imagenet"
    title = "ImageNet-1k (ILSVRC2012)"
    splits = ("train", "val")
    root_candidates = ("", "imagenet", "ILSVRC2012", "imagenet-object-localization-challenge")
    markers = ("train/ or val/ (or ILSVRC/Data/CLS-LOC/)",)
    extra_columns = {"wnid": pa.string()}

    def is_canonical_root(self, path: Path) -> bool:
        return any((path / base / split).is_dir() for base in ("", KAGGLE_DATA) for split in self.splits)

    @cached_property
    def data_folder(self) -> str:
        return KAGGLE_DATA if (self.root / KAGGLE_DATA).is_dir() else ""

    def read_classes(self) -> list[str]:
        return list(imagenet_synsets())

    def read_split(self, split: str, classes: list[str]) -> SplitRecords:
        folder = f"{self.data_folder}/{split}".lstrip("/")
        if not (self.root / folder).is_dir():
            raise SplitAbsent(f"folder {self.root / folder} not found")
        subfolders = list_subfolders(self.root / folder)
        if subfolders:
            rows = self._class_folders(folder, subfolders, classes)
        elif split == "val":
            rows = self._flat_val(folder)
        else:
            raise self.error(self.root / folder, "expected one sub-folder per wnid (n01440764, ...)")
        position = {wnid: i for i, wnid in enumerate(classes)}
        unknown = next((path for path, wnid in rows if wnid not in position), None)
        if unknown is not None:
            wnid = dict(rows)[unknown]
            raise self.error(self.root / unknown, f"labelled {wnid!r}, which is not one of the 1,000 ImageNet-1k wnids")
        return SplitRecords(
            paths=[path for path, _ in rows],
            labels=[position[wnid] for _, wnid in rows],
            extras={"wnid": [wnid for _, wnid in rows]},
        )

    def _class_folders(self, folder: str, subfolders: list[str], classes: list[str]) -> list[tuple[str, str]]:
        known = set(classes)
        unknown = [name for name in subfolders if name not in known]
        if unknown:
            raise self.error(self.root / folder / unknown[0], "not an ImageNet-1k wnid folder")
        absent = sorted(known - set(subfolders))
        if absent:
            raise self.error(
                self.root / folder, f"{len(absent)} of the 1000 class folders are missing, first {absent[0]}"
            )
        return [(f"{folder}/{wnid}/{image}", wnid) for wnid in subfolders for image in list_images(self.root / folder / wnid)]

    def _flat_val(self, folder: str) -> list[tuple[str, str]]:
        images = list_images(self.root / folder)
        labels = self._val_labels(folder, images)
        unlabelled = [image for image in images if image not in labels]
        if unlabelled:
            raise self.error(self.root / folder / unlabelled[0], "no ground-truth label for this val image")
        return [(f"{folder}/{image}", labels[image]) for image in images]

    def _val_labels(self, folder: str, images: list[str]) -> dict[str, str]:
        """Val file name -> wnid, from whichever official label source is present in the root."""
        solution = self.root / "LOC_val_solution.csv"
        if self.file_present(solution.name):
            self.files_read.add(solution.name)
            return self._kaggle_val_labels(solution)
        if self.file_present("meta.bin"):
            self.files_read.add("meta.bin")
            from torchvision.datasets.imagenet import load_meta_file

            _, val_wnids = load_meta_file(self.root)
            if len(val_wnids) != len(images):
                raise self.error(self.root / "meta.bin", f"labels {len(val_wnids)} val images, val/ holds {len(images)}")
            return dict(zip(images, val_wnids))  # torchvision labels the files in sorted order
        if (self.root / DEVKIT).is_dir():
            return self._devkit_val_labels(images)
        raise self.error(
            self.root / folder,
            f"flat val folder without labels: expected LOC_val_solution.csv, meta.bin or {DEVKIT}/ in "
            f"{self.root}, or {folder}/<wnid>/ sub-folders",
        )

    def _kaggle_val_labels(self, path: Path) -> dict[str, str]:
        labels, line_of = {}, {}
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for lineno, row in enumerate(csv.reader(handle), 1):
                if lineno == 1 and row[:1] == ["ImageId"]:
                    continue
                if len(row) != 2 or not row[1].split():
                    raise self.error(path, f"line {lineno}: expected 'ImageId,PredictionString', got {','.join(row)!r}")
                image, wnid = f"{row[0]}.JPEG", row[1].split()[0]
                first = line_of.setdefault(image, lineno)
                if first != lineno:  # a dict would keep the last label silently
                    labels_told = f"labelled {labels[image]} and {wnid}" if labels[image] != wnid else f"both {wnid}"
                    raise self.error(path, f"lines {first} and {lineno} both label {row[0]} ({labels_told}): "
                                     "one image once")
                labels[image] = wnid
        return labels

    def _devkit_val_labels(self, images: list[str]) -> dict[str, str]:
        meta = self.root / DEVKIT / "meta.mat"
        synsets = self.mat(f"{DEVKIT}/meta.mat", ("synsets",))["synsets"]
        ids = struct_field(meta, synsets, "ILSVRC2012_ID", self.doc, "int", "synsets")
        wnids = struct_field(meta, synsets, "WNID", self.doc, "str", "synsets")
        num_children = struct_field(meta, synsets, "num_children", self.doc, "int", "synsets")
        # leaves only: the 1,000 classes (meta.mat also lists their ancestors)
        id_to_wnid = {i: w for i, w, n in zip(ids, wnids, num_children) if n == 0}
        truth = self.root / DEVKIT / "ILSVRC2012_validation_ground_truth.txt"
        values = [self.integer(truth, n, line, "ILSVRC2012_ID") for n, line in self.lines(str(truth.relative_to(self.root)))]
        if len(values) != len(images):
            raise self.error(truth, f"labels {len(values)} val images, val/ holds {len(images)}")
        for lineno, value in enumerate(values, 1):
            if value not in id_to_wnid:
                raise self.error(truth, f"line {lineno}: ILSVRC2012_ID {value} is not a class (leaf synset) of meta.mat")
        return {image: id_to_wnid[value] for image, value in zip(images, values)}
