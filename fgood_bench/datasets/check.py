"""Checking a download against its metadata: missing files and images that do not decode."""

from __future__ import annotations

import io
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from fgood_bench.datasets import load_index
from fgood_bench.datasets.base import DatasetIndex, missing_files
from fgood_bench.inputs import read_regular
from fgood_bench.interrupt import ignore_sigint
from fgood_bench.progress import progress as progress_bar


@dataclass
class InspectReport:
    index: DatasetIndex
    missing: dict[str, list[str]]
    unreadable: list[tuple[str, str]] | None = None  # None: images were not decoded

    def to_dict(self) -> dict:
        report = {
            "dataset": self.index.dataset,
            "root": str(self.index.root),
            "options": self.index.options,
            "num_classes": self.index.num_classes,
            "splits": self.index.split_counts(),
            "missing": {split: len(paths) for split, paths in self.missing.items()},
            "missing_paths": {split: paths for split, paths in self.missing.items() if paths},
            "absent": self.index.absent,
        }
        if self.unreadable is not None:
            report["unreadable"] = [{"path": path, "error": error} for path, error in self.unreadable]
        return report


def inspect_dataset(
    name: str, root: str | Path, *, check_images: bool = False, workers: int | None = None,
    progress: bool = True, **options,
) -> InspectReport:
    """Parse a dataset, list the images its metadata names but the disk lacks, optionally decode all."""
    index = load_index(name, root, **options)
    absent = set(missing_files(index.root, index.samples.column("path").to_pylist()))  # one scan of every folder
    missing = {split: [p for p in index.split(split).column("path").to_pylist() if p in absent] for split in index.splits}
    report = InspectReport(index=index, missing=missing)
    if check_images:
        absent = {path for paths in missing.values() for path in paths}
        present = [p for p in index.samples.column("path").to_pylist() if p not in absent]
        report.unreadable = find_unreadable_images(index.root, present, workers=workers, progress=progress)
    return report


def image_problem(path: str | Path) -> str | None:
    """Why the image at ``path`` cannot be fully decoded, or None when it can."""
    try:
        with Image.open(io.BytesIO(read_regular(path, "image"))) as image:  # a FIFO is refused, not waited on
            image.load()
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ... for broken files
        return f"{type(err).__name__}: {err}"
    return None


def find_unreadable_images(
    root: Path, paths: list[str], *, workers: int | None = None, progress: bool = True
) -> list[tuple[str, str]]:
    """``(path, error)`` for each image under ``root`` that does not decode, in the order given."""
    workers = workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    files = [str(root / path) for path in paths]
    bar = dict(total=len(files), desc="decoding images", unit="img", enabled=progress)
    if workers <= 1 or len(files) < 64:
        problems = [image_problem(f) for f in progress_bar(files, **bar)]
    else:
        with ProcessPoolExecutor(workers, initializer=ignore_sigint) as pool:
            chunk = max(1, min(256, len(files) // (workers * 8)))
            try:
                problems = list(progress_bar(pool.map(image_problem, files, chunksize=chunk), **bar))
            except KeyboardInterrupt:  # drop the queued chunks rather than decode them all first
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    return [(path, problem) for path, problem in zip(paths, problems) if problem]
