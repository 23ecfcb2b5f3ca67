"""Splits of a manifest as Hugging Face ``datasets`` (lazy images) or as a plain torch Dataset."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import torch

from fgood_bench.datasets.base import check_inside_root
from fgood_bench.errors import FgoodError
from fgood_bench.inputs import read_regular
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


def load_split(manifest: str | Path | Manifest, split: str, root: str | Path, format: str = "hf",
               transform: Callable | None = None):
    """One split over the user's own image files (nothing is decoded here): a ``datasets.Dataset``, or with
    ``format="torch"`` a :class:`SplitDataset` (a ``torch.utils.data.Dataset`` of ``(transform(image), label)``)."""
    if format == "torch":
        return SplitDataset(manifest, split, root, transform=transform)
    if format != "hf":
        raise FgoodError(f"format {format!r}: choose 'hf' (a datasets.Dataset) or 'torch' (a torch Dataset)")
    if transform is not None:
        raise FgoodError("transform goes with format='torch'; for a datasets.Dataset use its set_transform")
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


class ImageFiles(torch.utils.data.Dataset):
    """Image files under ``root`` as ``(transform(PIL RGB image), label, index)``."""

    def __init__(self, root: Path, paths: list[str], labels: list[int], transform: Callable | None = None):
        self.root, self.paths, self.labels, self.transform = Path(root), paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        from PIL import Image

        try:
            with Image.open(io.BytesIO(read_regular(self.root / self.paths[index], "image"))) as image:
                image = image.convert("RGB")
        except (OSError, SyntaxError, ValueError) as err:
            raise FgoodError(f"{self.root / self.paths[index]}: unreadable image ({type(err).__name__}: {err})") from None
        return (self.transform(image) if self.transform else image), self.labels[index], index


class SplitDataset(ImageFiles):
    """One split as a ``torch.utils.data.Dataset`` of ``(image, label)``: the image as a PIL RGB image or
    whatever ``transform`` (e.g. torchvision transforms v2) makes of it; OOD rows have label -1.
    The same images and labels, in the same order, as :func:`load_split`'s ``datasets.Dataset``."""

    def __init__(self, manifest: str | Path | Manifest, split: str, root: str | Path, transform: Callable | None = None):
        manifest = _manifest(manifest)
        self.rows = manifest.split(split)
        self.classes = manifest.id_class_names
        super().__init__(manifest.dataset_root(root), self.rows.paths, self.rows.labels, transform)
        check_inside_root(self.root, self.rows.paths)

    @property
    def targets(self) -> list[int]:
        """Every row's label (-1 for OOD rows), as torchvision's datasets name them."""
        return list(self.labels)

    def __getitem__(self, index: int):
        return super().__getitem__(index)[:2]
