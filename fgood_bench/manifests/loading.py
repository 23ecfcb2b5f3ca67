"""Splits of a manifest as Hugging Face ``datasets`` (lazy images) or as a plain torch Dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from fgood_bench.datasets.base import check_inside_root
from fgood_bench.manifests.manifest import Manifest


def _manifest(manifest: str | Path | Manifest) -> Manifest:
    return manifest if isinstance(manifest, Manifest) else Manifest.load(manifest)


def split_features(manifest: Manifest):
    """``image`` (decoded lazily), ``label`` (ClassLabel of the ID classes; -1 = OOD), ``class_name``, ``path``."""
    import datasets

    names = manifest.id_class_names
    label = datasets.ClassLabel(names=names) if names else datasets.Value("int64")
    features = {"image": datasets.Image(), "label": label, "class_name": datasets.Value("string"), "path": datasets.Value("string")}
    if manifest.data.get("image_sha256"):
        features["sha256"] = datasets.Value("string")
    return datasets.Features(features)


def load_split(manifest: str | Path | Manifest, split: str, root: str | Path):
    """One split as a ``datasets.Dataset`` over the user's own image files (nothing is decoded here)."""
    import datasets

    manifest = _manifest(manifest)
    rows = manifest.split(split)
    dataset_root = manifest.dataset_root(root)
    check_inside_root(dataset_root, rows.paths)
    columns = {
        "image": [str(dataset_root / path) for path in rows.paths],
        "label": rows.labels,
        "class_name": rows.class_names,
        "path": rows.paths,
    }
    if manifest.data.get("image_sha256"):
        columns["sha256"] = rows.sha256
    return datasets.Dataset.from_dict(columns, features=split_features(manifest), split=datasets.NamedSplit(split))


def load_benchmark(manifest: str | Path | Manifest, root: str | Path):
    """All splits of a manifest as a ``datasets.DatasetDict``."""
    import datasets

    manifest = _manifest(manifest)
    return datasets.DatasetDict({split: load_split(manifest, split, root) for split in manifest.split_names})


class SplitDataset:
    """A torch-style dataset of one split: ``(image, label)``, the image as a PIL RGB image or
    whatever ``transform`` makes of it. For training code that does not want Hugging Face."""

    def __init__(self, manifest: str | Path | Manifest, split: str, root: str | Path, transform: Callable | None = None):
        manifest = _manifest(manifest)
        self.rows = manifest.split(split)
        self.root = manifest.dataset_root(root)
        check_inside_root(self.root, self.rows.paths)
        self.classes = manifest.id_class_names
        self.transform = transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        from PIL import Image

        with Image.open(self.root / self.rows.paths[index]) as image:
            image = image.convert("RGB")
        return (self.transform(image) if self.transform else image), self.rows.labels[index]
