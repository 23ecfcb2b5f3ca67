"""``fgood-bench verify``: does a user's dataset copy hold exactly the images a manifest names?"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fgood_bench.datasets.base import missing_files
from fgood_bench.datasets.integrity import first_repeat
from fgood_bench.datasets.check import find_unreadable_images
from fgood_bench.errors import FgoodError, plural
from fgood_bench.manifests.files import sha256_file, sha256_files
from fgood_bench.manifests.manifest import Manifest, SplitChanged, check_relative_path

SHOWN = 3  # paths shown per problem in the summary


def split_overlaps(manifest: Manifest, hashes: dict[str, list[str]] | None = None) -> list[str]:
    """Images in two splits of a benchmark: the same path (always checked), or with ``hashes`` (split ->
    sha256 per row) the same content. One line per leak, naming both entries."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    leaks = []
    for split in manifest.split_names:
        rows = manifest.split(split)
        for i, path in enumerate(rows.paths):
            keys = [("path", path)]
            if hashes is not None and split in hashes and hashes[split][i] is not None:
                keys.append(("content", hashes[split][i]))
            for what, key in keys:
                first = seen.setdefault((what, key), (split, path))
                if first[0] != split:
                    leaks.append(f"split leak: {split} {path} and {first[0]} {first[1]} are the same {'image' if what == 'path' else 'content'}")
                    break
    return leaks


def split_duplicates(manifest: Manifest, splits: list[str] | None = None) -> list[str]:
    """A path listed twice in one split file (a row counted twice, or under two labels): one line per
    split that has one, naming the split file and both line numbers (the header is line 1)."""
    found = []
    for split in manifest.split_names if splits is None else splits:
        rows = manifest.split(split)
        repeat = first_repeat(rows.paths)
        if repeat is not None:
            a, b = repeat
            labels = "" if rows.labels[a] == rows.labels[b] and rows.class_names[a] == rows.class_names[b] else \
                f", under two labels ({rows.labels[a]} {rows.class_names[a]!r} and {rows.labels[b]} {rows.class_names[b]!r})"
            file = manifest.folder / manifest.data["splits"][split]["file"]
            found.append(f"{file}: lines {a + 2} and {b + 2} both list {rows.paths[a]}: one image twice in split {split}{labels}")
    return found


def check_disjoint(manifest: Manifest) -> None:
    """Refuse a benchmark whose splits share an image path (a train image evaluated as a test one), or
    whose split lists an image twice."""
    duplicates = split_duplicates(manifest)
    if duplicates:
        raise FgoodError(duplicates[0])
    leaks = split_overlaps(manifest)
    if leaks:
        raise FgoodError(f"{manifest.path}: {leaks[0]} ({len(leaks)} shared in all); the splits must be disjoint")


def pinned_files(data: dict) -> list[tuple[str, str]]:
    """(file, sha256) of every file a manifest pins besides its split files: any object with a
    ``file`` and a ``sha256`` (``ranking``, ``predictions``, ``provenance.stability``), in document order."""
    found, pending = [], [value for key, value in reversed(data.items()) if key != "splits"]
    while pending:  # depth-first without recursion: a loadable manifest may nest deeply
        node = pending.pop()
        if isinstance(node, dict):
            if isinstance(node.get("file"), str) and isinstance(node.get("sha256"), str):
                found.append((node["file"], node["sha256"]))
            pending.extend(reversed(node.values()))
        elif isinstance(node, list):
            pending.extend(reversed(node))
    return found


@dataclass
class VerifyReport:
    manifest: Manifest
    root: Path
    images_checked: bool
    metadata: dict[str, str] = field(default_factory=dict)  # file -> "missing" | "differs"
    files: dict[str, str] = field(default_factory=dict)  # ranking.csv, predictions.npz, ... -> "missing" | "differs"
    split_files: dict[str, str] = field(default_factory=dict)  # split -> why it cannot be trusted
    missing: dict[str, list[str]] = field(default_factory=dict)
    unreadable: dict[str, list[str]] = field(default_factory=dict)
    hash_mismatch: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    leaks: list[str] = field(default_factory=list)  # images in two splits
    duplicates: list[str] = field(default_factory=list)  # an image twice in one split (one line per split)

    @property
    def ok(self) -> bool:
        per_image = (self.missing, self.unreadable, self.hash_mismatch)
        return not (self.metadata or self.files or self.split_files or self.leaks or self.duplicates or any(paths for table in per_image for paths in table.values()))

    def summary(self) -> list[str]:
        lines = [f"{self.manifest.name}: manifest sha256 {sha256_file(self.manifest.path)}, dataset {self.manifest.dataset} at {self.root}"]
        for relpath, status in self.metadata.items():
            lines.append(f"metadata {relpath}: {status}")
        for relpath, status in self.files.items():
            lines.append(f"manifest file {relpath}: {status}")
        for split, why in self.split_files.items():
            lines.append(f"{split}: {why}")
        lines.extend(self.duplicates)
        lines.extend(self.leaks[:SHOWN] + ([f"... {len(self.leaks)} split leaks in all"] if len(self.leaks) > SHOWN else []))
        for what, table in (("missing", self.missing), ("unreadable", self.unreadable), ("hash differs", self.hash_mismatch)):
            for split, paths in table.items():
                if paths:
                    lines.append(f"{split}: {len(paths)} {what}, first: {', '.join(paths[:SHOWN])}")
        hashed = self.manifest.data.get("image_sha256", False)
        if not hashed:  # say so: an OK below does not mean that the images are the published ones
            lines.append("image contents are not pinned: the manifest records no per-image sha256 (built without "
                         "--hash-images), so a replaced image goes unnoticed" + (" (--images only decodes them)" if self.images_checked else ""))
        if self.ok:
            checked = ("decoded and matching their sha256" if hashed else "decoded") if self.images_checked else "present"
            lines.append(f"OK: {plural(sum(self.counts.values()), 'image')} in {plural(len(self.counts), 'split')}, all {checked}")
        return lines


def verify_manifest(manifest: str | Path | Manifest, root: str | Path, *, images: bool = False,
                    workers: int | None = None, progress: bool = True) -> VerifyReport:
    """Check the dataset's metadata files, the manifest's own files (split files, ranking.csv,
    predictions.npz, stability.json) against their sha256, every image's presence and, with
    ``images``, that each decodes and matches its recorded sha256."""
    manifest = manifest if isinstance(manifest, Manifest) else Manifest.load(manifest)
    dataset_root = manifest.dataset_root(root)
    report = VerifyReport(manifest, dataset_root, images)
    for relpath, expected in manifest.data["dataset"]["metadata_sha256"].items():
        check_relative_path(relpath, str(manifest.path))
        path = dataset_root / relpath
        if not path.is_file():
            report.metadata[relpath] = "missing"
        elif sha256_file(path) != expected:
            report.metadata[relpath] = "differs from the manifest's sha256"
    for relpath, expected in pinned_files(manifest.data):
        check_relative_path(relpath, str(manifest.path))
        path = manifest.folder / relpath
        if not path.is_file():
            report.files[relpath] = "missing"
        elif sha256_file(path) != expected:
            report.files[relpath] = "differs from the manifest's sha256"
    content: dict[str, list[str | None]] = {}
    for split in manifest.split_names:
        try:
            rows = manifest.split(split)
        except SplitChanged as err:  # reported; an unsafe or malformed split file is refused (exit 2)
            report.split_files[split] = str(err)
            continue
        report.missing[split] = missing_files(dataset_root, rows.paths)  # refuses paths leaving the root
        report.counts[split] = len(rows)
        if images:
            absent = set(report.missing[split])
            present = [p for p in rows.paths if p not in absent]
            broken = find_unreadable_images(dataset_root, present, workers=workers, progress=progress)
            report.unreadable[split] = [path for path, _ in broken]
            if rows.sha256 is None and len(manifest.split_names) == 1:
                continue  # no recorded hash to compare, no other split to overlap: spare reading every file again
            actual = dict(zip(present, sha256_files(dataset_root, present)))
            content[split] = [actual.get(p) for p in rows.paths]
            if rows.sha256 is not None:
                expected = dict(zip(rows.paths, rows.sha256))
                report.hash_mismatch[split] = [p for p, h in actual.items() if h != expected[p]]
    report.duplicates = split_duplicates(manifest, [s for s in manifest.split_names if s not in report.split_files])
    if not report.split_files:
        report.leaks = split_overlaps(manifest, content if images else None)
    return report
