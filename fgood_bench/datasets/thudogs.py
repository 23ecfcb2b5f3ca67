"""Tsinghua Dogs: 130 breeds, official train 65,228 / val 5,200 (40 per breed).

Layout (images from the project page, split lists from the GitHub repository)::

    <root>/
      low-resolution/<count>-n<6-digit id>-<Breed>/<image>.jpg|.jpeg
      high-resolution/...                               (the 38.8 GB variant, same folders)
      TrainAndValList/train.lst  TrainAndValList/validation.lst   (or split/, or <root> itself)

The ``.lst`` files start with a UTF-8 BOM, use CRLF line ends and list ``.//<folder>/<image>``;
the breed is the folder. One folder name has a space (``220-n000032-Fila Braziliero``).
Class index ``k`` is breed id ``n{k+1:06d}`` (the lists are not in id order: pug, n000130,
comes before papillon, n000129). The class name is the breed part of the folder name.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from fgood_bench.datasets.base import DatasetAdapter, SplitAbsent, SplitRecords
from fgood_bench.datasets.integrity import line_origin

FOLDER_PATTERN = re.compile(r"(\d+)-n(\d{6})-(.+)")
VARIANT_FOLDERS = {"high": "high-resolution", "low": "low-resolution"}
LIST_FOLDERS = ("TrainAndValList", "TrainValSplit/TrainAndValList", "split", "")
LIST_FILES = {"train": "train.lst", "val": "validation.lst"}


class TsinghuaDogs(DatasetAdapter):
    name = "thudogs"
    title = "Tsinghua Dogs"
    splits = ("train", "val")
    root_candidates = ("", "TsinghuaDogs", "tsinghua-dogs", "Tsinghua-Dogs")
    markers = ("low-resolution or high-resolution",)
    option_names = ("variant",)

    def is_canonical_root(self, path: Path) -> bool:
        return any((path / folder).is_dir() for folder in VARIANT_FOLDERS.values())

    @property
    def variant(self) -> str:
        """``high`` unless asked otherwise or only the low-resolution images exist."""
        variant = self.options.get("variant")
        if variant is None:
            variant = "high" if (self.root / VARIANT_FOLDERS["high"]).is_dir() else "low"
        if variant not in VARIANT_FOLDERS:
            raise self.error(self.root, f"variant must be 'low' or 'high', got {variant!r}")
        return variant

    @property
    def image_folder(self) -> str:
        folder = VARIANT_FOLDERS[self.variant]
        if not (self.root / folder).is_dir():
            raise self.error(self.root / folder, f"folder missing (asked for the {self.variant}-resolution images)")
        return folder

    @cached_property
    def list_folder(self) -> Path:
        for folder in LIST_FOLDERS:
            if any((self.root / folder / name).exists() for name in LIST_FILES.values()):
                return self.root / folder
        places = ", ".join(f"{folder or '.'}/" for folder in LIST_FOLDERS)
        raise self.error(self.root, f"split lists train.lst / validation.lst not found in {places}")

    @cached_property
    def _lists(self) -> dict[str, list[tuple[int, str, str]]]:
        """split -> [(line number, class folder, image file)] for every list present."""
        lists = {}
        for split, filename in LIST_FILES.items():
            path = self.list_folder / filename
            if not self.file_present(str(path.relative_to(self.root))):
                continue
            entries = []
            for lineno, line in self.lines(str(path.relative_to(self.root))):
                parts = line.lstrip("./").split("/")
                if len(parts) != 2 or not FOLDER_PATTERN.fullmatch(parts[0]):
                    raise self.error(path, f"line {lineno}: expected './/<count>-n<id>-<Breed>/<image>', got {line!r}")
                entries.append((lineno, parts[0], parts[1]))
            lists[split] = entries
        return lists

    def read_classes(self) -> list[str]:
        breeds: dict[int, str] = {}
        first_seen: dict[int, tuple[str, str]] = {}
        for split, entries in self._lists.items():
            path = self.list_folder / LIST_FILES[split]
            for lineno, folder, _ in entries:
                _, breed_id, breed = FOLDER_PATTERN.fullmatch(folder).groups()
                first_seen.setdefault(int(breed_id), (self._list_relpath(split), f"line {lineno}"))
                if breeds.setdefault(int(breed_id), breed) != breed:
                    raise self.error(path, f"line {lineno}: breed id n{breed_id} is {breeds[int(breed_id)]!r} elsewhere, here {breed!r}")
        ids = sorted(breeds)
        if ids != list(range(1, len(ids) + 1)):
            gaps = sorted(set(range(1, ids[-1] + 1)) - set(ids))
            raise self.error(self.list_folder, f"breed ids must run n000001..n{ids[-1]:06d}; n{gaps[0]:06d} is in no list")
        self.class_origin = lambda index: first_seen[index + 1]
        return [breeds[i] for i in ids]

    def _list_relpath(self, split: str) -> str:
        return str((self.list_folder / LIST_FILES[split]).relative_to(self.root))

    def read_split(self, split: str, classes: list[str]) -> SplitRecords:
        if split not in self._lists:
            raise SplitAbsent(f"{self.list_folder / LIST_FILES[split]} not found")
        images = self.image_folder
        paths, labels, linenos = [], [], []
        for lineno, folder, image in self._lists[split]:
            paths.append(f"{images}/{folder}/{image}")
            labels.append(int(FOLDER_PATTERN.fullmatch(folder).group(2)) - 1)
            linenos.append(lineno)
        return SplitRecords(paths=paths, labels=labels, origin=line_origin(self._list_relpath(split), linenos))
