"""``build-ood-set``: a coarse OOD test set (Places365, Textures, any image folder) as a manifest.

A fixed, seeded sample of a dataset's official split(s), written like a benchmark's manifest
(one split, ``ood_test``, every label -1), so that every evaluation uses the same images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from fgood_bench import __version__
from fgood_bench.datasets import get_adapter, load_dataset
from fgood_bench.errors import FgoodError
from fgood_bench.manifests.files import sha256_bytes, sha256_file, sha256_files, split_file_bytes, write_folder
from fgood_bench.manifests.manifest import SCHEMA_VERSION

# Splits drawn from by default: Places365's labelled val images (the common OOD test source),
# all of DTD's partition (the 5,640 images used as "Textures"), all of an image folder.
DEFAULT_SPLITS = {"places365": ("val",), "dtd": ("train", "val", "test"), "imagefolder": ("all",)}


def build_ood_set(
    dataset: str, root: str | Path, out: str | Path, *, name: str | None = None, size: int | None = None, seed: int = 0,
    splits: list[str] | None = None, dataset_options: dict | None = None, hash_images: bool = False,
) -> Path:
    """Sample ``size`` images (all when None) of ``splits`` with ``seed``; returns the manifest path."""
    index = load_dataset(dataset, root, **(dataset_options or {}))
    splits = list(splits or DEFAULT_SPLITS.get(dataset, index.splits))
    absent = [s for s in splits if s not in index.splits]
    if absent:
        why = index.absent.get(absent[0], "not an official split of this dataset")
        raise FgoodError(f"{index.root}: split {absent[0]} is needed and absent ({why})")
    table = pa.concat_tables([index.split(s) for s in splits])
    population = table.num_rows
    if size is not None and not 1 <= size <= population:
        raise FgoodError(f"--size {size}: must be 1..{population} (the images of {', '.join(splits)})")
    chosen = np.arange(population) if size is None else np.sort(np.random.default_rng(seed).choice(population, size, replace=False))
    paths = table.column("path").take(chosen).to_pylist()
    class_names = table.column("class_name").take(chosen).to_pylist()
    rows = [(path, -1, class_name) for path, class_name in zip(paths, class_names)]
    content = split_file_bytes(rows, sha256_files(index.root, paths) if hash_images else None)
    name = name or dataset
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "kind": "ood_set",
        "benchmark": name,
        "dataset": {
            "id": dataset,
            "title": get_adapter(dataset).title,
            "options": index.options,
            "num_classes": index.num_classes,
            "class_index": f"see docs/datasets/{dataset}.md",
            "metadata_sha256": {relpath: sha256_file(index.root / relpath) for relpath in index.metadata_files},
        },
        "image_sha256": hash_images,
        "sample": {"from_splits": splits, "population": population, "size": len(rows), "seed": seed if size is not None else None},
        "splits": {"ood_test": {"file": "splits/ood_test.txt", "count": len(rows), "sha256": sha256_bytes(content)}},
        "provenance": {"toolkit": f"fgood-bench {__version__}"},
    }
    files = {"splits/ood_test.txt": content,
             "manifest.json": (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")}
    target = Path(out) / name
    write_folder(target, files)
    return target / "manifest.json"
