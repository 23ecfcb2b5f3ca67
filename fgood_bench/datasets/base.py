"""What every dataset adapter shares: root discovery, strict metadata parsing, the sample table.

An adapter reads one official download *as the user has it on disk* and turns it into a
:class:`DatasetIndex`: the ordered class list plus one Arrow table with a row per image
(``path``, ``label``, ``class_name``, ``split`` and whatever the dataset carries).

Paths in the table are POSIX paths relative to the dataset's *canonical root*, the folder that
holds its official metadata (``CUB_200_2011/`` for CUB). ``root`` may also name a folder that
contains the canonical root under one of the names the archives unpack to
(:attr:`DatasetAdapter.root_candidates`).
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fgood_bench.datasets.integrity import Origin, check_class_names, check_rows
from fgood_bench.datasets.matfile import load_mat
from fgood_bench.errors import DatasetError, FgoodError, article

# File-name extensions treated as images when a layout has no file list (ImageNet folders, DTD,
# image folders). Same set as torchvision's ``IMG_EXTENSIONS``; matched case-insensitively.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

DOCS_URL = "docs/datasets"


class SplitAbsent(Exception):
    """Raised by :meth:`DatasetAdapter.read_split` when an official split is not on disk at all."""


@dataclass
class SplitRecords:
    """The rows of one official split, as parsed from the metadata (not yet a table)."""

    paths: list[str]
    labels: Sequence[int] | np.ndarray
    extras: dict[str, list] = field(default_factory=dict)
    # Where row i comes from, (metadata file relative to the root, "line 12" or "trnid[3]"): called only
    # to word an error of the shared integrity check (fgood_bench.datasets.integrity).
    origin: Origin | None = None


@dataclass(frozen=True)
class DatasetIndex:
    """A parsed dataset: classes in index order and one row per image of every present split."""

    dataset: str
    root: Path
    classes: tuple[str, ...]
    samples: pa.Table
    absent: dict[str, str]
    options: dict[str, object] = field(default_factory=dict)
    # Metadata files the adapter read, relative to ``root`` (their checksums go into manifests).
    metadata_files: tuple[str, ...] = ()
    # Present official splits, in the adapter's order (a present split may hold no image).
    present: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def splits(self) -> list[str]:
        """Present official splits, in the adapter's order."""
        return list(self.present)

    def split(self, name: str) -> pa.Table:
        mask = pc.equal(self.samples.column("split"), name)
        return self.samples.filter(mask)

    def split_counts(self) -> dict[str, int]:
        indices = self.samples.column("split").combine_chunks().indices.to_numpy()
        counts = np.bincount(indices, minlength=len(self.present))
        return {name: int(count) for name, count in zip(self.present, counts)}


def read_lines(path: Path, doc: str | None = None) -> list[tuple[int, str]]:
    """Non-blank lines of a text file as ``(line number, stripped text)``.

    Tolerates what official files carry: a UTF-8 BOM, CRLF line ends, trailing spaces and a
    missing final newline.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(path, "file is missing", doc) from None
    except IsADirectoryError:
        raise DatasetError(path, "a folder where a file is expected", doc) from None
    except UnicodeDecodeError as err:
        raise DatasetError(path, f"not UTF-8 text ({err.reason} at byte {err.start})", doc) from None
    except OSError as err:
        raise DatasetError(path, f"cannot be read ({err.strerror})", doc) from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def display_path(path: str | Path) -> str:
    """``path`` as it can be printed: bytes of a file name that are not UTF-8 (a Latin-1 name read
    through Python's surrogate escapes) shown as ``\\xNN``."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def _utf8_name(folder: Path, name: str) -> str:
    """``name``, refused when it is not UTF-8: manifests, Arrow and Parquet store paths as UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise DatasetError(display_path(Path(folder) / name), "the file name is not UTF-8 (written on a system with "
                           "another encoding, e.g. Latin-1): rename it to UTF-8 (convmv -f latin1 -t utf8)") from None
    return name


def _scan(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as err:  # a symlink loop (ELOOP), an over-long path (ENAMETOOLONG), no permission...
        raise DatasetError(display_path(folder), f"cannot be listed ({err.strerror or err})") from None


def list_images(folder: Path) -> list[str]:
    """Sorted names of the image files directly in ``folder`` (hidden files skipped)."""
    return sorted(
        _utf8_name(folder, entry.name)
        for entry in _scan(folder)
        if not entry.name.startswith(".")
        and entry.name.lower().endswith(IMAGE_EXTENSIONS)
        and entry.is_file()
    )


def list_subfolders(folder: Path) -> list[str]:
    """Sorted names of the non-hidden sub-folders of ``folder``."""
    return sorted(_utf8_name(folder, e.name) for e in _scan(folder) if not e.name.startswith(".") and e.is_dir())


# -- paths that leave the dataset root -------------------------------------------------------
# A path from metadata (or a manifest) is joined to the root and every symlink on the way is
# resolved: the result must still be inside the root, or a dataset could make fgood-bench read,
# hash and embed any file of the machine (``images/escape -> /etc``).
ESCAPING = re.compile(r"^/|(^|/)\.\.(/|$)|\x00")  # absolute, a '..' component, a NUL byte


def inside(root_real: str, path_real: str) -> bool:
    """Whether the resolved ``path_real`` is ``root_real`` or below it (both from ``os.path.realpath``)."""
    return path_real == root_real or path_real.startswith(root_real.rstrip("/") + "/")


def _scan_paths(root: Path, relpaths: list[str]) -> tuple[list[str], list[str]]:
    """(those of ``relpaths`` whose file, with every symlink resolved, is not inside ``root``;
    those that are not files on disk), each in order.

    Scans each folder once instead of one ``stat`` per image (ImageNet and WebVision list millions
    of files in a few thousand folders), and resolves only the folders and the entries that are
    symlinks.
    """
    root_real = os.path.realpath(root)
    wanted: dict[str, set[str]] = defaultdict(set)
    for rel in relpaths:
        folder, _, name = rel.rpartition("/")
        wanted[folder].add(name)
    leaving: set[str] = set()
    present: dict[str, set[str]] = {}
    for folder, names in wanted.items():
        folder_path, present[folder] = os.path.join(root, folder), set()
        if not inside(root_real, os.path.realpath(folder_path)):
            leaving.update(f"{folder}/{name}" if folder else name for name in names)
            continue
        try:
            with os.scandir(folder_path) as entries:
                found = [e for e in entries if e.name in names]
            present[folder] = {e.name for e in found if not e.is_dir()}
        except OSError:  # missing, not a folder, a symlink loop, too long a name: its files are missing
            continue
        leaving.update(f"{folder}/{e.name}" if folder else e.name for e in found
                       if e.is_symlink() and not inside(root_real, os.path.realpath(e.path)))
    missing = [rel for rel in relpaths if rel.rpartition("/")[2] not in present[rel.rpartition("/")[0]]]
    return [rel for rel in relpaths if rel in leaving], missing


def missing_files(root: Path, relpaths: Iterable[str], what: str = "image") -> list[str]:
    """Those of ``relpaths`` (POSIX, relative to ``root``) that are not files on disk, in order.
    Refuses (one line) when any of them leaves ``root`` through '..', an absolute path or a
    symlink: nothing outside a dataset is ever read."""
    relpaths = list(relpaths)
    escaping = [rel for rel in relpaths if ESCAPING.search(rel)]
    leaving, missing = _scan_paths(root, relpaths) if not escaping else (escaping, [])
    if leaving:
        first = Path(root) / leaving[0]
        target = os.path.realpath(first)
        raise FgoodError(f"{display_path(first)}: {what} path leaves the dataset root {display_path(root)} "
                         f"(it resolves to {display_path(target)}; {len(leaving)} such paths): refused")
    return missing


def check_inside_root(root: Path, relpaths: Iterable[str], what: str = "image") -> None:
    """Refuse (one line) when any of ``relpaths`` leaves ``root`` (as :func:`missing_files`)."""
    missing_files(root, relpaths, what)


class DatasetAdapter:
    """Base class of the adapters: one subclass per official dataset, one module each.

    Subclasses set the class attributes and implement :meth:`read_classes` and
    :meth:`read_split`; :meth:`load` assembles the result.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    splits: ClassVar[tuple[str, ...]]
    # Folders under the user's --root where the canonical root may be ("" is --root itself).
    root_candidates: ClassVar[tuple[str, ...]] = ("",)
    # Files or folders any of which identifies the canonical root (a missing metadata file is
    # then reported by name rather than as "not this dataset").
    markers: ClassVar[tuple[str, ...]] = ()
    # Keyword options the adapter accepts (``--partition``, ``--variant``, ...).
    option_names: ClassVar[tuple[str, ...]] = ()
    # Extra columns of the sample table, with their Arrow types.
    extra_columns: ClassVar[dict[str, pa.DataType]] = {}

    def __init__(self, root: str | Path, **options):
        unknown = set(options) - set(self.option_names)
        if unknown:
            raise DatasetError(root, f"option {sorted(unknown)[0]!r} does not apply to {self.name}", self.doc)
        self.options = options
        self.root = self.find_root(Path(root).expanduser())
        self.files_read: set[str] = set()
        # Where class i is named (file, position), set by read_classes where it knows: worded by the
        # shared check of class names (unique, no tab or line break) when it fails.
        self.class_origin: Origin | None = None

    @property
    def doc(self) -> str:
        return f"{DOCS_URL}/{self.name}.md"

    # -- root discovery --------------------------------------------------------------------

    def is_canonical_root(self, path: Path) -> bool:
        return any((path / marker).exists() for marker in self.markers)

    def find_root(self, root: Path) -> Path:
        try:
            root.stat()
        except FileNotFoundError:
            raise DatasetError(display_path(root), "no such folder", self.doc) from None
        except OSError as err:  # a symlink loop (ELOOP), too long a name (ENAMETOOLONG), no permission
            raise DatasetError(display_path(root), f"cannot be read ({err.strerror or err})", self.doc) from None
        if not root.is_dir():
            raise DatasetError(display_path(root), "not a folder", self.doc)
        for candidate in self.root_candidates:
            path = root / candidate if candidate else root
            if path.is_dir() and self.is_canonical_root(path):
                return path
        places = ", ".join(repr(c or ".") for c in self.root_candidates)
        raise DatasetError(
            root,
            f"not {article(self.title)} download: expected {' or '.join(self.markers)} in one of {places}",
            self.doc,
        )

    # -- parsing helpers -------------------------------------------------------------------

    def error(self, path: Path, problem: str) -> DatasetError:
        return DatasetError(path, problem, self.doc)

    def lines(self, relpath: str) -> list[tuple[int, str]]:
        lines = read_lines(self.root / relpath, self.doc)
        self.files_read.add(relpath)
        return lines

    def file_present(self, relpath: str) -> bool:
        """Whether the metadata file ``relpath`` is there; a folder (or anything else) in its place
        is an error naming it, never taken for an absent split."""
        path = self.root / relpath
        if path.is_dir():
            raise self.error(path, "a folder where a file is expected")
        if path.exists() and not path.is_file():
            raise self.error(path, "not a regular file")
        return path.is_file()

    def mat(self, relpath: str, variables: tuple[str, ...]) -> dict:
        """Variables of a MATLAB file of the devkit (``squeeze_me=True``, as torchvision loads them)."""
        content = load_mat(self.root / relpath, variables, self.doc)
        self.files_read.add(relpath)
        return content

    def fields(self, path: Path, lineno: int, line: str, count: int, expected: str) -> list[str]:
        """Split a whitespace-separated record; the last field keeps any inner spaces."""
        parts = line.split(maxsplit=count - 1)
        if len(parts) != count:
            raise self.error(path, f"line {lineno}: expected '{expected}', got {line!r}")
        return parts

    def integer(self, path: Path, lineno: int, text: str, what: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise self.error(path, f"line {lineno}: {what} must be an integer, got {text!r}") from None

    def check_range(self, path: Path, where: str, value: int, low: int, high: int, what: str) -> None:
        if not low <= value <= high:
            raise self.error(path, f"{where}: {what} {value} out of range {low}..{high}")

    def options_in_effect(self) -> dict[str, object]:
        """Every option's value as used, defaults included (read from the adapter's property of
        the option's name), so that a manifest records which images it means."""
        return {name: getattr(self, name) for name in self.option_names}

    # -- the adapter's job -----------------------------------------------------------------

    def read_classes(self) -> list[str]:
        raise NotImplementedError

    def read_split(self, split: str, classes: list[str]) -> SplitRecords:
        """Rows of one split; raise :class:`SplitAbsent` when it is not on disk at all."""
        raise NotImplementedError

    def load(self) -> DatasetIndex:
        classes = self.read_classes()
        check_class_names(self.root, classes, self.class_origin, self.doc)
        parts: dict[str, SplitRecords] = {}
        absent: dict[str, str] = {}
        for split in self.splits:
            try:
                parts[split] = self.read_split(split, classes)
            except SplitAbsent as why:
                absent[split] = str(why)
        if not parts:
            reasons = "; ".join(f"{s}: {why}" for s, why in absent.items())
            raise self.error(self.root, f"no official split of {self.title} is present ({reasons})")
        samples = self._table(parts, classes)
        # one shared place for every adapter: a path once per split, in one split only, with one label
        check_rows(self.root, list(parts), [records.origin for records in parts.values()], samples, self.doc)
        self._check_paths(samples.column("path"))
        return DatasetIndex(
            dataset=self.name,
            root=self.root,
            classes=tuple(classes),
            samples=samples,
            absent=absent,
            options=self.options_in_effect(),
            metadata_files=tuple(sorted(self.files_read)),
            present=tuple(parts),
        )

    def _check_paths(self, paths: pa.ChunkedArray) -> None:
        """Refuse metadata naming an image outside the root: an absolute path, a '..' component, or a
        folder that resolves elsewhere through a symlink (symlinked files are checked where images are
        read: inspect, verify, build-splits, build-ood-set, export)."""
        escaping = paths.filter(pc.match_substring_regex(paths, ESCAPING.pattern))
        if len(escaping):
            raise self.error(self.root / str(escaping[0]), f"the metadata names an image outside the dataset root "
                             f"({len(escaping)} such paths): refused")
        folders = pc.unique(pc.replace_substring_regex(paths, r"/[^/]*$", "", max_replacements=1)).to_pylist()
        root_real = os.path.realpath(self.root)
        for folder in folders:
            if "/" in folder or os.path.isdir(self.root / folder):  # a flat file name is not a folder
                target = os.path.realpath(self.root / folder)
                if not inside(root_real, target):
                    raise self.error(self.root / folder, f"resolves to {display_path(target)}, outside the dataset root "
                                     "(a symbolic link?): the images must be inside it")

    def _table(self, parts: dict[str, SplitRecords], classes: list[str]) -> pa.Table:
        paths = [p for records in parts.values() for p in records.paths]
        labels = np.concatenate([np.asarray(r.labels, dtype=np.int32).reshape(-1) for r in parts.values()])
        split_ids = np.repeat(np.arange(len(parts), dtype=np.int32), [len(r.paths) for r in parts.values()])
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise AssertionError(f"{self.name}: adapter produced a label outside 0..{len(classes) - 1}")
        columns = {
            "path": pa.array(paths, pa.string()),
            "label": pa.array(labels, pa.int32()),
            "class_name": pa.DictionaryArray.from_arrays(labels, pa.array(classes, pa.string())),
            "split": pa.DictionaryArray.from_arrays(split_ids, pa.array(list(parts), pa.string())),
        }
        for name, dtype in self.extra_columns.items():
            values = [v for records in parts.values() for v in records.extras.get(name, [None] * len(records.paths))]
            columns[name] = pa.array(values, dtype)
        return pa.table(columns)
