"""``fgood-bench verify``: does a user's dataset copy hold exactly the images a manifest names?"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fgood_bench.datasets.base import missing_files
from fgood_bench.datasets.check import find_unreadable_images
from fgood_bench.errors import FgoodError
from fgood_bench.manifests.files import sha256_file, sha256_files
from fgood_bench.manifests.manifest import Manifest, check_relative_path

SHOWN = 3  # paths shown per problem in the summary


@dataclass
class VerifyReport:
    manifest: Manifest
    root: Path
    images_checked: bool
    metadata: dict[str, str] = field(default_factory=dict)  # file -> "missing" | "differs"
    split_files: dict[str, str] = field(default_factory=dict)  # split -> why it cannot be trusted
    missing: dict[str, list[str]] = field(default_factory=dict)
    unreadable: dict[str, list[str]] = field(default_factory=dict)
    hash_mismatch: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        per_image = (self.missing, self.unreadable, self.hash_mismatch)
        return not (self.metadata or self.split_files or any(paths for table in per_image for paths in table.values()))

    def summary(self) -> list[str]:
        lines = [f"{self.manifest.name}: manifest sha256 {sha256_file(self.manifest.path)}, dataset {self.manifest.dataset} at {self.root}"]
        for relpath, status in self.metadata.items():
            lines.append(f"metadata {relpath}: {status}")
        for split, why in self.split_files.items():
            lines.append(f"{split}: {why}")
        for what, table in (("missing", self.missing), ("unreadable", self.unreadable), ("hash differs", self.hash_mismatch)):
            for split, paths in table.items():
                if paths:
                    lines.append(f"{split}: {len(paths)} {what}, first: {', '.join(paths[:SHOWN])}")
        if self.ok:
            hashed = self.manifest.data.get("image_sha256", False)
            checked = ("decoded and matching their sha256" if hashed else "decoded") if self.images_checked else "present"
            lines.append(f"OK: {sum(self.counts.values())} images in {len(self.counts)} splits, all {checked}")
        return lines


def verify_manifest(manifest: str | Path | Manifest, root: str | Path, *, images: bool = False,
                    workers: int | None = None, progress: bool = True) -> VerifyReport:
    """Check the dataset's metadata files, the split files' hashes, every image's presence and,
    with ``images``, that each decodes and matches its recorded sha256."""
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
    for split in manifest.split_names:
        try:
            rows = manifest.split(split)
        except FgoodError as err:
            report.split_files[split] = str(err)
            continue
        report.counts[split] = len(rows)
        report.missing[split] = missing_files(dataset_root, rows.paths)
        if images:
            absent = set(report.missing[split])
            present = [p for p in rows.paths if p not in absent]
            broken = find_unreadable_images(dataset_root, present, workers=workers, progress=progress)
            report.unreadable[split] = [path for path, _ in broken]
            if rows.sha256 is not None:
                expected = dict(zip(rows.paths, rows.sha256))
                actual = sha256_files(dataset_root, present)
                report.hash_mismatch[split] = [p for p, h in zip(present, actual) if h != expected[p]]
    return report
