"""``build-ood-set``: a coarse OOD test set (Places365, Textures, any image folder) as a manifest.

A fixed, seeded sample of a dataset's official split(s), written like a benchmark's manifest
(one split, ``ood_test``, every label -1), so that every evaluation uses the same images.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from fgood_bench import __version__
from fgood_bench.datasets import load_index
from fgood_bench.datasets.base import missing_files
from fgood_bench.errors import FgoodError
from fgood_bench.manifests.files import sha256_bytes, sha256_files, split_file_bytes
from fgood_bench.outputs import json_bytes, output_folder, output_name, preflight, refuse_inside_dataset
from fgood_bench.manifests.manifest import SCHEMA_VERSION, dataset_description
from fgood_bench.paper import FINE_GRAINED_CROP

# Splits drawn from by default: Places365's labelled val images (the common OOD test source),
# all of DTD's partition (the 5,640 images used as "Textures"), all of an image folder.
DEFAULT_SPLITS = {"places365": ("val",), "dtd": ("train", "val", "test"), "imagefolder": ("all",)}


def build_ood_set(
    dataset: str, root: str | Path, out: str | Path, *, name: str | None = None, size: int | None = None, seed: int = 0,
    splits: list[str] | None = None, dataset_options: dict | None = None, hash_images: bool = False, overwrite: bool = False,
) -> Path:
    """Sample ``size`` images (all when None) of ``splits`` with ``seed``; returns the manifest path."""
    if name is not None:  # OUT/NAME: one plain folder name
        output_name(name, "--name")
    preflight(Path(out) / (name or dataset), "ood_set", overwrite)
    index = load_index(dataset, root, **(dataset_options or {}))
    refuse_inside_dataset(out, index.root)
    with output_folder(Path(out) / (name or dataset), "ood_set", overwrite) as staged:  # locked for the whole command
        splits = list(splits or DEFAULT_SPLITS.get(dataset, index.splits))
        absent = [s for s in splits if s not in index.splits]
        if absent:
            why = index.absent.get(absent[0], "not an official split of this dataset")
            raise FgoodError(f"{index.root}: split {absent[0]} is needed and absent ({why})")
        table = pa.concat_tables([index.split(s) for s in splits])
        population = table.num_rows
        if size is not None and not 1 <= size <= population:
            raise FgoodError(f"size (--size) {size}: must be 1..{population} (the images of {', '.join(splits)})")
        chosen = np.arange(population) if size is None else np.sort(np.random.default_rng(seed).choice(population, size, replace=False))
        paths = table.column("path").take(chosen).to_pylist()
        missing = missing_files(index.root, paths)
        if missing:
            raise FgoodError(f"{index.root / missing[0]}: image listed in the dataset is missing ({len(missing)} of the "
                             f"sampled images in all; see fgood-bench inspect {dataset})")
        class_names = table.column("class_name").take(chosen).to_pylist()
        rows = [(path, -1, class_name) for path, class_name in zip(paths, class_names)]
        content = split_file_bytes(rows, sha256_files(index.root, paths) if hash_images else None)
        name = name or dataset
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "kind": "ood_set",
            "benchmark": name,
            "dataset": dataset_description(index),
            "image_sha256": hash_images,
            "sample": {"from_splits": splits, "population": population, "size": len(rows), "seed": seed if size is not None else None},
            "splits": {"ood_test": {"file": "splits/ood_test.txt", "count": len(rows), "sha256": sha256_bytes(content)}},
            "provenance": {"toolkit": f"fgood-bench {__version__}"},
        }
        files = {"splits/ood_test.txt": content,
                 "manifest.json": json_bytes(manifest)}
        return staged.write(files) / "manifest.json"


SYNTHETIC_KINDS = ("gaussian", "rademacher", "blobs", "arithmetic_mean", "geometric_mean", "speckle", "inverted", "pixelated")


# Hendrycks et al.'s Outlier Exposure code (hendrycks/outlier-exposure, CIFAR/test.py, the
# validation distributions of --validate and the test noises) is what each kind follows:
GAUSSIAN_SIGMA = 0.5  # "Gaussian Noise (sigma = 0.5)": N(0, 0.5) clipped to [-1, 1], in the normalised input
BLOB_P, BLOB_SIGMA, BLOB_THRESHOLD = 0.7, 1.5, 0.75  # "Blob": Bernoulli(0.7), gblur(sigma=1.5) over H, W and C, < 0.75 -> 0
PIXELATE_FACTOR = 0.2  # "Pixelate": PIL BOX resize to 0.2 of the size and back


def normalised_to_pixels(z: np.ndarray) -> np.ndarray:
    """HxWx3 values of the normalised input space -> pixels in [0, 1] (the inverse of the
    ImageNet ``Normalize`` of tools/images.py); z in [-1, 1] always lands inside [0, 1]."""
    from fgood_bench.paper import IMAGENET_MEAN, IMAGENET_STD

    return np.asarray(IMAGENET_MEAN) + np.asarray(IMAGENET_STD) * z


def synthetic_outlier(kind: str, images: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """One validation outlier of Appendix D.3, float HxWx3 in [0, 1], as the OE code makes it.

    The OE code builds its noises in the network's normalised input space (they bypass the
    transform) and its corruptions on [0, 1] pixels before ``Normalize``; here every kind is
    written in pixel space through the ImageNet normalisation the models use, so that the network
    sees OE's values again: Gaussian ``clip(N(0, 0.5), -1, 1)``; Rademacher ``±1``; Blobs
    ``Bernoulli(0.7)`` blurred (sigma 1.5, over height, width and channels as skimage's
    ``gaussian(multichannel=False)``), values below 0.75 set to 0, then ``* 2 - 1``. Corruptions
    of random ID images: arithmetic mean and geometric mean of two (``AvgOfPair``,
    ``GeomMeanOfPair``), speckle ``clamp(x + x * N(0, 1), 0, 1)``, inverted green and blue
    channels (``1 - x`` on channels 1 and 2: "not done on all channels"), pixelated by a PIL BOX
    resize to 0.2 of the size and back.
    """
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    first = images[rng.integers(len(images))]
    shape = first.shape
    if kind == "gaussian":
        return normalised_to_pixels(np.clip(rng.normal(0.0, GAUSSIAN_SIGMA, shape), -1, 1))
    if kind == "rademacher":
        return normalised_to_pixels(rng.integers(0, 2, shape) * 2.0 - 1.0)
    if kind == "blobs":
        noise = gaussian_filter(rng.binomial(1, BLOB_P, shape).astype(np.float64), sigma=BLOB_SIGMA, mode="nearest")
        noise[noise < BLOB_THRESHOLD] = 0.0
        return normalised_to_pixels(noise * 2 - 1)
    second = images[rng.integers(len(images))]
    if kind == "arithmetic_mean":
        return (first + second) / 2
    if kind == "geometric_mean":
        return np.sqrt(first * second)
    if kind == "speckle":
        return np.clip(first + first * rng.normal(0, 1, shape), 0, 1)
    if kind == "inverted":
        return np.concatenate([first[..., :1], 1.0 - first[..., 1:]], axis=-1)
    if kind == "pixelated":
        height, width = shape[:2]
        image = Image.fromarray((first * 255).round().clip(0, 255).astype(np.uint8))
        small = image.resize((int(width * PIXELATE_FACTOR), int(height * PIXELATE_FACTOR)), Image.Resampling.BOX)
        return np.asarray(small.resize((width, height), Image.Resampling.BOX), np.float64) / 255
    raise ValueError(kind)


def build_synthetic_val_set(manifest: str | Path, root: str | Path, out: str | Path, *, per_kind: int = 100, seed: int = 0,
                            image_size: int = FINE_GRAINED_CROP, source_images: int = 200, name: str = "synthetic-val",
                            overwrite: bool = False) -> Path:
    """Write ``out/<name>/images/<kind>/<k>.png`` (``per_kind`` of each kind) and its manifest;
    evaluate with ``--ood NAME=OUT/NAME --ood-root NAME=OUT/NAME/images``.

    The images are made at the size of the frame the evaluation transform resizes to (the
    benchmark recipe's geometry at crop ``image_size``: 512 x 512 for a 448 crop), so that its
    resize leaves them as they are and its centre crop hands the network OE's values unchanged:
    noise made at the crop size and then resized would be smoothed (Gaussian noise's std 0.48
    would reach the network as about 0.32)."""
    import io

    from PIL import Image

    from fgood_bench.manifests.manifest import Manifest
    from fgood_bench.tools.images import load_image
    from fgood_bench.tools.settings import Requested, resolve_settings

    output_name(name, "--name")  # OUT/NAME: one plain folder name
    benchmark = Manifest.load(manifest)
    with output_folder(Path(out) / name, "ood_set", overwrite) as staged:  # locked for the whole command
        rows = benchmark.split("id_train")
        dataset_root = benchmark.dataset_root(root)
        rng = np.random.default_rng(seed)
        chosen = sorted(rng.choice(len(rows), min(source_images, len(rows)), replace=False).tolist())
        evaluation = resolve_settings(Requested(image_size=image_size), benchmark=(benchmark.name, benchmark.dataset)).geometry
        frame = replace(evaluation, crop=evaluation.resize)  # the resized frame, whole: what evaluate resizes to
        sources = [load_image(dataset_root / rows.paths[i], frame).permute(1, 2, 0).numpy() / 255.0 for i in chosen]
        files: dict[str, bytes] = {}
        lines = []
        for kind in SYNTHETIC_KINDS:
            for k in range(per_kind):
                pixels = (synthetic_outlier(kind, sources, rng) * 255).round().clip(0, 255).astype(np.uint8)
                buffer = io.BytesIO()
                Image.fromarray(pixels).save(buffer, format="PNG")
                relpath = f"{kind}/{k:05d}.png"
                files[f"images/{relpath}"] = buffer.getvalue()
                lines.append((relpath, -1, kind))
        content = split_file_bytes(lines)
        document = {
            "schema_version": SCHEMA_VERSION,
            "kind": "ood_set",
            "benchmark": name,
            "dataset": {"id": "imagefolder", "title": "synthetic validation outliers", "options": {},
                        "num_classes": len(SYNTHETIC_KINDS), "class_index": "the kinds, in generation order",
                        "metadata_sha256": {}},
            "image_sha256": False,
            "sample": {"generated_from": {"benchmark": benchmark.name, "split": "id_train", "images": len(chosen)},
                       "kinds": list(SYNTHETIC_KINDS), "per_kind": per_kind, "seed": seed, "image_size": image_size,
                       "frame": {"size": frame.resize, "evaluated_as": asdict(evaluation),
                                 "statistics": "Hendrycks et al.'s OE code's, in the normalised input the network sees"}},
            "splits": {"ood_test": {"file": "splits/ood_test.txt", "count": len(lines), "sha256": sha256_bytes(content)}},
            "provenance": {"toolkit": f"fgood-bench {__version__}", "method": "paper Appendix D.3 validation outliers"},
        }
        files["splits/ood_test.txt"] = content
        files["manifest.json"] = json_bytes(document)
        return staged.write(files) / "manifest.json"
