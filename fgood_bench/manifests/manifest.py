"""Reading a manifest safely: schema check, split files checked against their sha256, safe paths.

A manifest may come from anywhere (a paper's repository, a colleague). Before any file of the
user's dataset is touched, :meth:`Manifest.load` refuses an unknown schema version, a document
that does not fit the schema, split files outside ``splits/``, and :meth:`Manifest.split`
refuses a split file whose sha256 differs from the manifest's, that names a path that is
absolute, contains ``..`` or otherwise leaves the dataset root, or (benchmarks) whose rows'
labels and class names are not the manifest's classes.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jsonschema

from fgood_bench.errors import FgoodError
from fgood_bench.inputs import clip, expand_user, read_json, read_regular
from fgood_bench.manifests.files import SPLIT_HEADER, sha256_bytes

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SplitRows:
    """The rows of one split file, in file order."""

    paths: list[str]
    labels: list[int]
    class_names: list[str]
    sha256: list[str] | None  # per-image hashes, when the manifest was built with --hash-images

    def __len__(self) -> int:
        return len(self.paths)


def dataset_description(index) -> dict:
    """The ``dataset`` entry of a manifest: adapter, options, class count and the sha256 of every
    official metadata file the adapter read (``index`` is a :class:`DatasetIndex`)."""
    from fgood_bench.datasets import get_adapter
    from fgood_bench.manifests.files import sha256_file

    return {
        "id": index.dataset,
        "title": get_adapter(index.dataset).title,
        "options": index.options,
        "num_classes": index.num_classes,
        "class_index": f"see docs/datasets/{index.dataset}.md",
        "metadata_sha256": {relpath: sha256_file(index.root / relpath) for relpath in index.metadata_files},
    }


def manifest_schema() -> dict:
    return json.loads(resources.files("fgood_bench.manifests").joinpath("schema.json").read_text("utf-8"))


def named_manifest(spec: str, or_holdout: bool = True) -> tuple[str, str]:
    """An ``--ood NAME=MANIFEST`` value as (NAME, MANIFEST); one line when either side is empty
    (``or_holdout``: the option also takes ``holdout``, which the caller handles)."""
    name, _, path = spec.partition("=")
    if not name or not path:
        expected = "'holdout' or NAME=MANIFEST" if or_holdout else "NAME=MANIFEST"
        raise FgoodError(f"--ood {spec!r}: expected {expected}")
    return name, path


def check_relative_path(path: str, where: str) -> None:
    """Refuse a path that could reach outside the dataset root."""
    normal = posixpath.normpath(path)
    if (not path or path.startswith("/") or "\\" in path or "\x00" in path or ":" in path.split("/")[0]
            or normal.startswith("..") or ".." in path.split("/") or normal != path.rstrip("/")):
        raise FgoodError(f"{where}: unsafe image path {path!r} (must be relative, inside the dataset root, without '..')")


def check_id_classes(path: Path, id_classes: list[dict]) -> None:
    """ID labels are 0..K-1, each once, with distinct names: a label given twice would merge two
    classes (and ``datasets.ClassLabel`` refuses repeated names)."""
    labels = sorted(c["label"] for c in id_classes)
    if labels != list(range(len(labels))):
        repeated = next((a for a, b in zip(labels, labels[1:]) if a == b), None)
        problem = f"label {repeated} is given twice" if repeated is not None else f"labels must be 0..{len(labels) - 1}"
        raise FgoodError(f"{path}: id_classes: {problem}")
    names = [c["name"] for c in id_classes]
    if len(set(names)) != len(names):
        repeated = next(n for i, n in enumerate(names) if n in names[:i])
        raise FgoodError(f"{path}: id_classes: class name {repeated!r} is given twice")


def check_benchmark_classes(path: Path, data: dict) -> None:
    """A benchmark's class lists agree with each other: K = len(id_classes), no class both ID and OOD
    and, for a ranked benchmark, every class of the dataset in one of them (build-splits ranks them all)."""
    id_classes, ood_classes = data["id_classes"], data["ood_classes"]
    if data["num_id"] != len(id_classes):
        raise FgoodError(f"{path}: num_id is {data['num_id']} but id_classes lists {len(id_classes)} classes")
    id_names = {c["name"] for c in id_classes}
    shared = next((c["name"] for c in ood_classes if c["name"] in id_names), None)
    if shared is not None:
        raise FgoodError(f"{path}: class {shared!r} is in both id_classes and ood_classes")
    indices = sorted(c["index"] for c in id_classes + ood_classes)
    if data.get("selection", "ranked") == "ranked" and indices != list(range(data["dataset"]["num_classes"])):
        raise FgoodError(f"{path}: id_classes and ood_classes must hold each of the dataset's "
                         f"{data['dataset']['num_classes']} classes once (a ranked benchmark splits all of them)")


class SplitChanged(FgoodError):
    """A split file that is missing or differs from the manifest's sha256 (``verify`` reports it)."""


class Manifest:
    """A loaded ``manifest.json`` and the folder holding its split files."""

    def __init__(self, path: Path, data: dict):
        self.path = path
        self.folder = path.parent
        self.data = data
        self._rows: dict[str, SplitRows] = {}

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        path = expand_user(path)
        if path.is_dir():
            path = path / "manifest.json"
        # a regular file only (a FIFO never blocks); strict JSON: a key given twice ("kind") or NaN is refused
        data = read_json(path, "manifest file")
        if not isinstance(data, dict):
            raise FgoodError(f"{path}: a manifest is a JSON object")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise FgoodError(f"{path}: unknown schema_version {version!r}; this fgood-bench reads version {SCHEMA_VERSION}")
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(manifest_schema()).iter_errors(data))
        if error is not None:
            where = "/".join(map(str, error.absolute_path)) or "(top level)"
            raise FgoodError(f"{path}: does not fit the manifest schema at {clip(where, 120)}: {clip(error.message, 200)}")
        check_id_classes(path, data.get("id_classes", []))
        if data["kind"] == "benchmark":
            check_benchmark_classes(path, data)
        return cls(path, data)

    # -- what it describes ------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.data["benchmark"]

    @property
    def kind(self) -> str:
        return self.data["kind"]

    @property
    def dataset(self) -> str:
        return self.data["dataset"]["id"]

    @property
    def dataset_options(self) -> dict:
        return self.data["dataset"]["options"]

    @property
    def split_names(self) -> list[str]:
        return list(self.data["splits"])

    @property
    def id_class_names(self) -> list[str]:
        """ID class names in label order (empty for image sets without ID classes)."""
        classes = sorted(self.data.get("id_classes", []), key=lambda c: c["label"])
        return [c["name"] for c in classes]

    def dataset_root(self, root: str | Path) -> Path:
        """The dataset's canonical root under ``root``, found as the adapter finds it."""
        from fgood_bench.datasets import get_adapter

        return get_adapter(self.dataset)(root, **self.dataset_options).root

    # -- split files ------------------------------------------------------------------------

    def split_bytes(self, name: str) -> bytes:
        """The split file's content, verified against the manifest's sha256."""
        entry = self._split_entry(name)
        path = self.folder / entry["file"]
        if not path.exists():
            raise SplitChanged(f"{path}: split file listed in the manifest is missing")
        if path.is_dir():
            raise FgoodError(f"{path}: a folder where the manifest lists a split file")
        content = read_regular(path, "split file")  # a FIFO or device is refused, never read
        if sha256_bytes(content) != entry["sha256"]:
            raise SplitChanged(f"{path}: sha256 differs from the manifest's: the split file was changed")
        return content

    def split(self, name: str) -> SplitRows:
        """Rows of split ``name``, after checking the file's hash and every path."""
        if name not in self._rows:
            self._rows[name] = self._parse(name, self.split_bytes(name))
        return self._rows[name]

    def _split_entry(self, name: str) -> dict:
        try:
            return self.data["splits"][name]
        except KeyError:
            raise FgoodError(f"{self.path}: no split {name!r}; it has {', '.join(self.split_names)}") from None

    def _parse(self, name: str, content: bytes) -> SplitRows:
        path = self.folder / self._split_entry(name)["file"]
        try:
            lines = content.decode("utf-8").split("\n")
        except UnicodeDecodeError as err:  # UTF-16, Latin-1: a split file is written as UTF-8 (the sha256 matched)
            raise FgoodError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); split files are UTF-8") from None
        header, rows = lines[0], [line for line in lines[1:] if line]
        hashed = header == SPLIT_HEADER + "\tsha256"
        if header != SPLIT_HEADER and not hashed:
            raise FgoodError(f"{path}: line 1: expected the header {SPLIT_HEADER!r}")
        paths, labels, names, hashes = [], [], [], []
        width = 4 if hashed else 3
        for lineno, line in enumerate(rows, 2):
            fields = line.split("\t")
            if len(fields) != width:
                raise FgoodError(f"{path}: line {lineno}: expected {width} tab-separated fields")
            check_relative_path(fields[0], f"{path}: line {lineno}")
            try:
                labels.append(int(fields[1]))
            except ValueError:
                raise FgoodError(f"{path}: line {lineno}: label {fields[1]!r} is not an integer") from None
            paths.append(fields[0])
            names.append(fields[2])
            if hashed:
                hashes.append(fields[3])
        if len(paths) != self._split_entry(name)["count"]:
            raise FgoodError(f"{path}: {len(paths)} rows, the manifest says {self._split_entry(name)['count']}")
        num_id = len(self.id_class_names)
        bad = next((label for label in labels if label != -1 and not 0 <= label < num_id), None)
        if bad is not None:
            raise FgoodError(f"{path}: label {bad} outside -1..{num_id - 1}")
        if name.startswith("id_") and -1 in labels:  # -1 marks OOD images: never trained on or scored as ID
            raise FgoodError(f"{path}: line {labels.index(-1) + 2}: label -1 (OOD) in the ID split {name}")
        if self.kind == "benchmark":
            self._check_row_classes(name, path, paths, labels, names)
        return SplitRows(paths, labels, names, hashes if hashed else None)

    def _check_row_classes(self, split: str, path: Path, paths: list[str], labels: list[int], names: list[str]) -> None:
        """Every row's (label, class name) is one the manifest declares: an ID split's the pair of
        id_classes, an OOD split's label -1 with a name of ood_classes. A hand edit that swaps two ID
        names or labels, relabels a row or cuts ood_classes down would otherwise load as a benchmark."""
        rows = enumerate(zip(labels, names))
        if split.startswith("id_"):  # labels are 0..K-1 here (checked above)
            id_names = self.id_class_names
            bad = next((i for i, (label, name) in rows if id_names[label] != name), None)
            rule = f"the manifest's id_classes (label {labels[bad]} is {id_names[labels[bad]]!r})" if bad is not None else ""
        else:
            ood_names = {c["name"] for c in self.data["ood_classes"]}
            bad = next((i for i, (label, name) in rows if label != -1 or name not in ood_names), None)
            rule = f"the manifest: {split} rows have label -1 and a class of ood_classes"
        if bad is not None:
            raise FgoodError(f"{path}: line {bad + 2} ({paths[bad]}): label {labels[bad]} and class {names[bad]!r}, "
                             f"which disagree with {rule}")
