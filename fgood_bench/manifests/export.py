"""Exporting a manifest: OpenOOD image lists, or self-contained Parquet shards with a dataset card."""

from __future__ import annotations

import io
from pathlib import Path

from fgood_bench import __version__
from fgood_bench.errors import FgoodError
from fgood_bench.outputs import preflight, write_folder
from fgood_bench.manifests.manifest import Manifest

# OpenOOD's file names for fine-grained benchmarks (configs/datasets/<id>/*.yml of its 2023 release)
OPENOOD_NAMES = {"id_train": "train_id.txt", "id_val": "val_id.txt", "id_test": "test_id.txt", "ood_test": "test_ood_hard.txt"}
SHARD_BYTES = 500 * 2**20  # the Hub's default max_shard_size
PAPER_CITATION = """@article{zhang2021fine,
  title   = {Fine-grained Out-of-Distribution Detection with Mixup Outlier Exposure},
  author  = {Zhang, Jingyang and Inkawhich, Nathan and Chen, Yiran and Li, Hai},
  journal = {arXiv preprint arXiv:2106.03917},
  year    = {2021}
}"""
LICENCE_NOTE = (
    "The images are not fgood-bench's: they belong to the {title} dataset and are subject to its "
    "terms of use. Redistribute this export only where those terms allow it; otherwise share the "
    "fgood-bench manifest, which lists paths and checksums only."
)


def export_openood(manifest: str | Path | Manifest, out: str | Path, prefix: str = "", overwrite: bool = False) -> Path:
    """Write OpenOOD image lists (``<path> <label>``, OOD rows -1) into ``out/<name>/``.

    OpenOOD splits each line at its first space, so a path with a space cannot be expressed:
    such manifests are refused rather than written wrongly.
    """
    manifest = manifest if isinstance(manifest, Manifest) else Manifest.load(manifest)
    files = {}
    for split in manifest.split_names:
        rows = manifest.split(split)
        for path in rows.paths:
            if " " in prefix + path:
                raise FgoodError(f"{manifest.path}: path {path!r} has a space, which OpenOOD's list reader splits on; "
                                 "link the folder under a name without spaces and export with --prefix")
        name = OPENOOD_NAMES.get(split, f"test_{manifest.name}.txt" if manifest.kind == "ood_set" else f"{split}.txt")
        files[name] = "".join(f"{prefix}{path} {label}\n" for path, label in zip(rows.paths, rows.labels)).encode()
    target = Path(out) / manifest.name
    write_folder(target, files, kind="openood-export", overwrite=overwrite)
    return target


def export_hf(manifest: str | Path | Manifest, root: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """Write ``out/<name>/data/<split>-XXXXX-of-YYYYY.parquet`` with the image bytes embedded and a
    ``README.md`` dataset card; ``datasets.load_dataset(out/<name>)`` loads it offline."""
    import datasets

    from fgood_bench.manifests.loading import split_features

    manifest = manifest if isinstance(manifest, Manifest) else Manifest.load(manifest)
    preflight(Path(out) / manifest.name, "hf-export", overwrite)
    dataset_root = manifest.dataset_root(root)
    features = split_features(manifest)
    datasets.disable_progress_bars()
    files: dict[str, bytes] = {}
    shards: dict[str, int] = {}
    for split in manifest.split_names:
        rows = manifest.split(split)
        _check_images(dataset_root, rows.paths)
        chunks = _chunks_by_size(dataset_root, rows.paths)
        shards[split] = len(chunks)
        for number, (start, stop) in enumerate(chunks):
            columns = {
                "image": [{"bytes": _read(dataset_root / p), "path": p.rpartition("/")[2]} for p in rows.paths[start:stop]],
                "label": rows.labels[start:stop],
                "class_name": rows.class_names[start:stop],
                "path": rows.paths[start:stop],
            }
            if rows.sha256 is not None:
                columns["sha256"] = rows.sha256[start:stop]
            buffer = io.BytesIO()  # to_parquet keeps the features (ClassLabel names, Image) in the schema
            datasets.Dataset.from_dict(columns, features=features).to_parquet(buffer)
            files[f"data/{split}-{number:05d}-of-{len(chunks):05d}.parquet"] = buffer.getvalue()
    files["README.md"] = dataset_card(manifest, features, shards).encode("utf-8")
    target = Path(out) / manifest.name
    write_folder(target, files, kind="hf-export", overwrite=overwrite)
    return target


def _check_images(root: Path, paths: list[str]) -> None:
    """Every image to embed is a file inside the dataset root (symlinks resolved) that decodes."""
    from fgood_bench.datasets.base import check_inside_root, missing_files
    from fgood_bench.datasets.check import find_unreadable_images

    check_inside_root(root, paths)
    missing = missing_files(root, paths)
    if missing:
        raise FgoodError(f"{root / missing[0]}: image listed in the manifest is missing ({len(missing)} in all)")
    broken = find_unreadable_images(root, paths, progress=False)
    if broken:
        raise FgoodError(f"{root / broken[0][0]}: not an image that decodes ({broken[0][1]}; {len(broken)} in all): "
                         "nothing exported")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise FgoodError(f"{path}: cannot be read for the export ({err.strerror})") from None


def _chunks_by_size(root: Path, paths: list[str]) -> list[tuple[int, int]]:
    """Row ranges of at most ``SHARD_BYTES`` of image data each (at least one range)."""
    chunks, start, size = [], 0, 0
    for i, path in enumerate(paths):
        try:
            file_size = (root / path).stat().st_size
        except OSError:
            raise FgoodError(f"{root / path}: image listed in the manifest is missing") from None
        if size and size + file_size > SHARD_BYTES:
            chunks.append((start, i))
            start, size = i, 0
        size += file_size
    chunks.append((start, len(paths)))
    return chunks


def dataset_card(manifest: Manifest, features, shards: dict[str, int]) -> str:
    """The README.md the Hub expects: YAML front matter (configs, features, splits, licence), then prose."""
    import yaml

    info = manifest.data
    title = info["dataset"].get("title", info["dataset"]["id"])
    feature_yaml = []
    for name, feature in features.items():
        dtype = type(feature).__name__
        if dtype == "ClassLabel":
            feature_yaml.append({"name": name, "dtype": {"class_label": {"names": {i: n for i, n in enumerate(feature.names)}}}})
        else:
            feature_yaml.append({"name": name, "dtype": "image" if dtype == "Image" else feature.dtype})
    header = {
        "pretty_name": f"{info['benchmark']} ({title}) — fgood-bench",
        "license": "other",
        "license_name": f"{info['dataset']['id']}-terms",
        "license_details": LICENCE_NOTE.format(title=title),
        "task_categories": ["image-classification"],
        "tags": ["out-of-distribution-detection", "fine-grained", "fgood-bench"],
        "configs": [{
            "config_name": "default",
            "data_files": [{"split": split, "path": f"data/{split}-*.parquet"} for split in shards],
        }],
        "dataset_info": {
            "features": feature_yaml,
            "splits": [{"name": split, "num_examples": info["splits"][split]["count"]} for split in shards],
        },
    }
    counts = "\n".join(f"| `{split}` | {info['splits'][split]['count']:,} |" for split in shards)
    return (
        "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n\n"
        f"# {info['benchmark']}\n\n"
        f"Exported by fgood-bench {__version__} from the manifest `{info['benchmark']}` "
        f"({info['kind']}) of {title}. `label` is the in-distribution class (0..K-1) and -1 for "
        "out-of-distribution images; `class_name` is the original class; `path` is the image's path "
        "in the official download.\n\n| split | images |\n|---|---|\n" + counts + "\n\n"
        f"## Licence\n\n{LICENCE_NOTE.format(title=title)}\n\n"
        f"## Citation\n\n```bibtex\n{PAPER_CITATION}\n```\n"
    )
