"""Exporting a manifest: OpenOOD image lists, or self-contained Parquet shards with a dataset card."""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

from fgood_bench import __version__
from fgood_bench.datasets.base import check_inside_root
from fgood_bench.errors import FgoodError, article
from fgood_bench.manifests.image_sets import (HOLDOUT, can_hold_out_validation, check_benchmark, check_ood_set, check_set_name,
                                              id_validation)
from fgood_bench.manifests.manifest import Manifest, check_relative_path
from fgood_bench.manifests.ood_set import SYNTHETIC_KINDS
from fgood_bench.outputs import output_folder
from fgood_bench.paper import FINE_GRAINED, PAPER_BASE_RATE
from fgood_bench.tools.geometry import Geometry
from fgood_bench.tools.settings import resolve_settings

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

# OpenOOD v1.5's layout (Jingkang50/OpenOOD: configs/datasets/<id>/<id>.yml and <id>_ood.yml point at
# ./data/benchmark_imglist/<id>/{train,val,test}_<id>.txt and test_<oodset>.txt, images under ./data/images_*/)
OPENOOD_LISTS = "data/benchmark_imglist"
OPENOOD_IMAGES = "data/images_fgood"
OPENOOD_ID_SPLITS = {"id_train": "train", "id_val": "val", "id_test": "test"}
NEAR_OOD = HOLDOUT  # the benchmark's holdout classes, as `fgood-bench evaluate --ood holdout` calls them
LINK_KINDS = ("symlink", "hardlink")
VAL_OOD = "synthetic-val"  # the OOD validation set made into the export (Appendix D.3), as build-ood-set names it
OE_BATCH_SIZE = FINE_GRAINED.outlier_batch_size  # Appendix D.1's outlier batch (OpenOOD's aircraft_oe.yml pairs it with train's)


@dataclass
class OpenOODSet:
    """One image set of an OpenOOD export: its list files (name -> rows) and where its images are."""

    name: str
    root: Path | None
    lists: dict[str, list[tuple[str, int]]]  # list file name -> (path in the dataset, label)
    prefix: str = ""
    generated: bool = False  # Appendix D.3's outliers, made into data/images_fgood/<name>/ by the export


def export_openood(manifest: str | Path | Manifest, out: str | Path, prefix: str = "", *,
                   far_ood: dict[str, str | Path | Manifest] | None = None, root: str | Path | None = None,
                   ood_roots: dict[str, str | Path] | None = None, link: str | None = None, overwrite: bool = False,
                   seed: int = 0, val_ood: tuple[str, str | Path | Manifest] | None = None,
                   val_ood_size: int | None = None) -> Path:
    """Write ``out/<name>/`` in OpenOOD v1.5's layout: image lists (``<path> <label>``, OOD -1) under
    ``data/benchmark_imglist/<name>/`` and, for a benchmark, ``configs/datasets/<name>/<name>.yml`` and
    ``<name>_ood.yml`` (near-OOD: the holdout classes; far-OOD: the ``far_ood`` sets, name -> manifest).

    A benchmark's export has OpenOOD's validation splits: ``dataset.val``, the benchmark's id_val split
    or else the ID validation images ``evaluate --seed SEED`` carves from id_train (left out of the
    train list, as evaluate fits its scorers and ``train --hold-out-validation`` trains without them),
    and ``ood_dataset.val``: ``val_ood`` (name, OOD-set manifest) or, where ``root`` is given, Appendix
    D.3's synthetic outliers (``val_ood_size`` per kind, ``seed``) made into ``data/images_fgood/synthetic-val/``
    as ``build-ood-set synthetic-val`` makes them; by default as many in all as a fifth of the ID validation
    images (Appendix C's 5:1 base rate), at least one of each kind. An outlier set (filter-outliers) is exported as
    OpenOOD's OE training data: ``train_<name>.txt`` and ``configs/datasets/<name>/<name>_oe.yml`` (``dataset.oe``).

    OpenOOD splits each line at its first space. ``link`` ("symlink" or "hardlink") builds
    ``data/images_fgood/<set>/`` next to the lists: one link per listed image, at a path whose spaces
    became underscores, and the lists name those paths; it needs the dataset folders (``root``,
    ``ood_roots`` by far-OOD name, default ``root``). Without it a path with a space is refused.
    """
    manifest = manifest if isinstance(manifest, Manifest) else Manifest.load(manifest)
    if link is not None and link not in LINK_KINDS:
        raise FgoodError(f"--link-images {link!r}: choose from {', '.join(LINK_KINDS)}")
    if link is not None and root is None:
        raise FgoodError("export --link-images needs --root DIR (the images to link to)")
    if link is not None and prefix:  # the links are made at the listed paths: keep them inside the export
        check_relative_path(prefix + "x", "--prefix")
    for option, given in (("--far-ood", far_ood), ("--val-ood", val_ood)):
        if given and manifest.kind != "benchmark":
            raise FgoodError(f"{manifest.path}: {option} goes with a benchmark manifest, not {article(manifest.kind)} manifest")
    if manifest.kind == "benchmark":  # the checks evaluate makes (manifests.image_sets), before anything is claimed
        check_benchmark(manifest)
    far_sets = []
    for name, far in (far_ood or {}).items():
        check_set_name(name, "--far-ood", [manifest.name, NEAR_OOD] + [n for n, _, _ in far_sets])
        far = far if isinstance(far, Manifest) else Manifest.load(far)
        far_sets.append((name, far, check_ood_set(name, far, manifest, "--far-ood")))
    val_set = None
    if val_ood is not None:
        name, given = val_ood
        check_set_name(name, "--val-ood", [manifest.name, NEAR_OOD] + [n for n, _, _ in far_sets])
        given = given if isinstance(given, Manifest) else Manifest.load(given)
        rows = check_ood_set(name, given, manifest, "--val-ood")
        val_set = OpenOODSet(name, given.dataset_root((ood_roots or {}).get(name, root)) if link else None,
                             {f"val_{name}.txt": list(zip(rows.paths, rows.labels))})
    elif manifest.kind == "benchmark" and root is not None and can_hold_out_validation(manifest):
        check_set_name(VAL_OOD, "the OOD validation set", [n for n, _, _ in far_sets])
        val_set = OpenOODSet(VAL_OOD, None, {}, generated=True)
    target = Path(out) / manifest.name
    with output_folder(target, "openood-export", overwrite) as staged:  # locked for the whole command
        own, header = _own_set(manifest, root, link, prefix, seed)
        sets = [own]
        for name, far, rows in far_sets:
            far_root = (ood_roots or {}).get(name, root)
            sets.append(OpenOODSet(name, far.dataset_root(far_root) if link else None,
                                   {f"test_{name}.txt": list(zip(rows.paths, rows.labels))}))
        files, links = {}, {}
        for image_set in sets + ([val_set] if val_set is not None and not val_set.generated else []):
            listed = _listed_paths(image_set, link is not None)
            for file_name, rows in image_set.lists.items():
                files[f"{OPENOOD_LISTS}/{manifest.name}/{file_name}"] = "".join(f"{listed[p]} {label}\n" for p, label in rows).encode()
            if link:
                check_inside_root(image_set.root, list(listed))  # a link never points outside the dataset
                for path, name in listed.items():
                    links[f"{OPENOOD_IMAGES}/{image_set.name}/{name}"] = image_set.root / path
        if manifest.kind == "benchmark":
            if val_set is not None and val_set.generated:
                val_ood_size = val_ood_size or val_outliers_per_kind(len(own.lists[f"val_{manifest.name}.txt"]))
                header += (f"# ood_dataset.val: Appendix D.3's synthetic outliers (build-ood-set synthetic-val), "
                           f"{val_ood_size} per kind, seed {seed}\n")
            files.update(openood_configs(manifest, sets, val_set, header))
        elif manifest.kind == "outliers":
            files.update(openood_oe_config(manifest))

        def populate(staging: Path) -> None:
            if link:
                _make_links(staging, links, link)
            if val_set is not None and val_set.generated:
                _make_val_outliers(staging, manifest, root, seed, val_ood_size)
        return staged.write(files, populate)


def openood_export_gaps(export: Path) -> list[str]:
    """What an OpenOOD export of a benchmark lacks that OpenOOD's pipelines read, one sentence each (the
    command prints them as warnings, publish as its stage's note); none for an OOD or outlier set."""
    import yaml

    export = Path(export)
    configs = export / "configs" / "datasets" / export.name
    if not (configs / f"{export.name}_ood.yml").is_file():
        return []
    dataset = yaml.safe_load((configs / f"{export.name}.yml").read_text())["dataset"]
    ood = yaml.safe_load((configs / f"{export.name}_ood.yml").read_text())["ood_dataset"]
    gaps = []
    if "val" not in dataset["split_names"]:
        gaps.append("no validation lists (dataset.val, ood_dataset.val): the benchmark has no id_val split and no class "
                    "with 2 id_train images to hold out; OpenOOD's APS_mode search and the postprocessors that read val "
                    "(e.g. ebo.yml, mds_ensemble.yml) and OE training with an outlier set's *_oe.yml (its split_names name "
                    "val) fail without them")
    elif "val" not in ood["split_names"]:
        gaps.append("no OOD validation list (ood_dataset.val): OpenOOD's APS_mode search and the postprocessors that read "
                    "it (e.g. ebo.yml, mds_ensemble.yml) fail without it; export again with --root DIR (Appendix D.3's "
                    "synthetic outliers are made from the ID images) or --val-ood NAME=MANIFEST")
    if not ood["farood"]["datasets"]:
        gaps.append("no --far-ood set: OpenOOD's test pipeline evaluates near- and far-OOD and fails (in _save_csv) "
                    "without a far-OOD set; export again with --far-ood NAME=MANIFEST (e.g. a build-ood-set places365 manifest)")
    return gaps


def _own_set(manifest: Manifest, root, link: str | None, prefix: str, seed: int) -> tuple[OpenOODSet, str]:
    """The manifest's own lists: ID train/val/test and the holdout (near-OOD) list, an outlier set's OE
    training list, or an OOD set's test list; and a comment for the configs that says where val is from.
    Without an id_val split, val is the ID validation images evaluate carves with ``seed``, left out of train."""
    lists, header = {}, ""
    if manifest.kind == "benchmark" and not can_hold_out_validation(manifest):  # each class has one id_train image
        header = "# dataset.val: none: no id_val split, and no class has 2 id_train images to hold one out\n"
    elif manifest.kind == "benchmark" and "id_val" not in manifest.split_names:
        validation = id_validation(manifest, Path("."), seed)
        train = manifest.split("id_train")
        lists[f"train_{manifest.name}.txt"] = [(p, y) for p, y, carved in zip(train.paths, train.labels, validation.carved)
                                               if not carved]
        lists[f"val_{manifest.name}.txt"] = list(zip(validation.images.paths, validation.images.labels))
        record = validation.record
        header = (f"# dataset.val: {record['count']} ID validation images {record['source']} "
                  f"({record['fraction_per_class']:g} per class, seed {record['seed']}, as `fgood-bench evaluate --seed "
                  f"{record['seed']}` holds them out), not in dataset.train; paths_sha256 {record['paths_sha256']}\n")
    for split in manifest.split_names:
        rows = manifest.split(split)
        if manifest.kind == "benchmark":
            name = f"{OPENOOD_ID_SPLITS[split]}_{manifest.name}.txt" if split in OPENOOD_ID_SPLITS else f"test_{NEAR_OOD}.txt"
            if name in lists:
                continue
        elif manifest.kind == "outliers":  # OE training data: no class, so -1 (OpenOOD's uniform soft label)
            lists[f"train_{manifest.name}.txt"] = [(p, -1) for p in rows.paths]
            continue
        else:
            name = f"test_{manifest.name}.txt"
        lists[name] = list(zip(rows.paths, rows.labels))
    return OpenOODSet(manifest.name, manifest.dataset_root(root) if link else None, lists, prefix), header


def val_outliers_per_kind(id_validation_images: int) -> int:
    """Synthetic OOD validation outliers per kind: Appendix C's 5:1 base rate over all kinds together
    (so the validation set is not mostly outliers), at least one of each kind."""
    return max(1, math.ceil(id_validation_images / (PAPER_BASE_RATE * len(SYNTHETIC_KINDS))))


def _make_val_outliers(staging: Path, manifest: Manifest, root, seed: int, per_kind: int) -> None:
    """Appendix D.3's outliers of the benchmark, made as ``build-ood-set synthetic-val --seed SEED --size
    PER_KIND`` makes them, into ``data/images_fgood/synthetic-val/`` with their list ``val_synthetic-val.txt``."""
    import shutil
    import tempfile

    from fgood_bench.manifests.ood_set import build_synthetic_val_set

    with tempfile.TemporaryDirectory(dir=staging) as scratch:
        built = Manifest.load(build_synthetic_val_set(manifest.path, root, scratch, per_kind=per_kind, seed=seed, name=VAL_OOD))
        rows = built.split("ood_test")
        images = staging / OPENOOD_IMAGES / VAL_OOD
        images.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(Path(scratch) / VAL_OOD / "images"), str(images))
    listed = staging / OPENOOD_LISTS / manifest.name / f"val_{VAL_OOD}.txt"
    listed.parent.mkdir(parents=True, exist_ok=True)
    listed.write_bytes("".join(f"{path} -1\n" for path in rows.paths).encode())


def _listed_paths(image_set: OpenOODSet, linked: bool) -> dict[str, str]:
    """Dataset path -> the path written in the lists (under the set's data_dir)."""
    listed = {}
    for rows in image_set.lists.values():
        for path, _ in rows:
            listed[path] = image_set.prefix + (path.replace(" ", "_") if linked else path)
            if " " in listed[path]:
                raise FgoodError(f"{image_set.name}: path {listed[path]!r} has a space, which OpenOOD's list reader "
                                 "splits on; export with --link-images symlink (a space-free tree of links)")
    if linked and len(set(listed.values())) != len(listed):
        clash = next(p for p in listed if list(listed.values()).count(listed[p]) > 1)
        raise FgoodError(f"{image_set.name}: {clash!r} and another path both become {listed[clash]!r} without spaces")
    return listed


def _make_links(staging: Path, links: dict[str, Path], kind: str) -> None:
    for relpath, source in sorted(links.items()):
        if not source.is_file():
            raise FgoodError(f"{source}: image listed in the manifest is missing")
        path = staging / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if kind == "hardlink":
                os.link(source, path)
            else:
                path.symlink_to(source.absolute())
        except OSError as err:
            raise FgoodError(f"{source}: cannot {kind} it into the export ({err.strerror or err}); "
                             "hard links need the same file system: try --link-images symlink") from None


def openood_geometry(geometry: Geometry) -> dict:
    """The OpenOOD v1.5 dataset keys that make its test preprocessor (``Convert('RGB')``,
    ``Resize(pre_size, interpolation)``, ``CenterCrop(image_size)``, ``ToTensor``, ``Normalize``;
    openood/preprocessors/test_preprocessor.py) produce fgood-bench's input tensors: torchvision's
    ``Resize`` takes a list as the exact (height, width) and an int as the shorter side, so a square
    resize is written ``[512, 512]`` and a shorter-side one ``256``."""
    pre_size = [geometry.resize, geometry.resize] if geometry.mode == "square" else geometry.resize
    return {"pre_size": pre_size, "image_size": geometry.crop, "interpolation": "bilinear"}


def openood_configs(manifest: Manifest, sets: list[OpenOODSet], val_set: OpenOODSet | None = None,
                    header: str = "") -> dict[str, bytes]:
    """``configs/datasets/<name>/<name>.yml`` (ID splits) and ``<name>_ood.yml`` (val, near-/far-OOD) as OpenOOD
    v1.5 writes them (cf. its configs/datasets/cifar10/*.yml), paths relative to the OpenOOD checkout."""
    import yaml

    name, far = manifest.name, sets[1:]
    lists = f"./{OPENOOD_LISTS}/{name}"
    data_dir = {s.name: f"./{OPENOOD_IMAGES}/{s.name}/" for s in sets + ([val_set] if val_set else [])}
    id_splits = [s for s in ("train", "val", "test") if f"{s}_{name}.txt" in sets[0].lists]
    runtime = {"num_workers": "@{num_workers}", "num_gpus": "@{num_gpus}", "num_machines": "@{num_machines}"}
    geometry = openood_geometry(resolve_settings(benchmark=(manifest.name, manifest.dataset)).geometry)
    dataset = {
        "name": name, "num_classes": len(manifest.id_class_names), **geometry,
        "normalization_type": "imagenet",  # fgood-bench's models use ImageNet mean/std (tools/images.py)
        **runtime, "split_names": id_splits,
    }
    for split in id_splits:
        dataset[split] = {"dataset_class": "ImglistDataset", "data_dir": data_dir[name],
                          "imglist_pth": f"{lists}/{split}_{name}.txt",
                          "batch_size": 32 if split == "train" else 200, "shuffle": split == "train"}
    ood = {
        "name": f"{name}_ood", "num_classes": len(manifest.id_class_names), "dataset_class": "ImglistDataset",
        **geometry, "batch_size": 200, "shuffle": False, **runtime,
        "split_names": (["val"] if val_set else []) + ["nearood", "farood"],
        **({"val": {"data_dir": data_dir[val_set.name], "imglist_pth": f"{lists}/val_{val_set.name}.txt"}} if val_set else {}),
        "nearood": {"datasets": [NEAR_OOD], NEAR_OOD: {"data_dir": data_dir[name], "imglist_pth": f"{lists}/test_{NEAR_OOD}.txt"}},
        "farood": {"datasets": [s.name for s in far],
                   **{s.name: {"data_dir": data_dir[s.name], "imglist_pth": f"{lists}/test_{s.name}.txt"} for s in far}},
    }
    return {f"configs/datasets/{name}/{name}.yml": (header + yaml.safe_dump({"dataset": dataset}, sort_keys=False)).encode(),
            f"configs/datasets/{name}/{name}_ood.yml": (header + yaml.safe_dump({"ood_dataset": ood}, sort_keys=False)).encode()}


def openood_oe_config(manifest: Manifest) -> dict[str, bytes]:
    """``configs/datasets/<name>/<name>_oe.yml``: the outlier set as OpenOOD v1.5's OE training data
    (cf. its configs/datasets/aircraft/aircraft_oe.yml): ``dataset.oe`` and ``split_names`` with ``oe``,
    given after a benchmark's ``<id>.yml`` (whose train, val and test it keeps) to its train_oe pipeline."""
    import yaml

    name = manifest.name
    dataset = {"split_names": ["train", "oe", "val", "test"],
               "oe": {"dataset_class": "ImglistDataset", "data_dir": f"./{OPENOOD_IMAGES}/{name}/",
                      "imglist_pth": f"./{OPENOOD_LISTS}/{name}/train_{name}.txt",
                      "batch_size": OE_BATCH_SIZE, "shuffle": True, "interpolation": "bilinear"}}
    return {f"configs/datasets/{name}/{name}_oe.yml": yaml.safe_dump({"dataset": dataset}, sort_keys=False).encode()}


def export_hf(manifest: str | Path | Manifest, root: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """Write ``out/<name>/data/<split>-XXXXX-of-YYYYY.parquet`` with the image bytes embedded and a
    ``README.md`` dataset card; ``datasets.load_dataset(out/<name>)`` loads it offline."""
    import datasets

    from fgood_bench.manifests.loading import split_features

    manifest = manifest if isinstance(manifest, Manifest) else Manifest.load(manifest)
    if manifest.kind == "benchmark":  # the checks evaluate makes (manifests.image_sets)
        check_benchmark(manifest)
    with output_folder(Path(out) / manifest.name, "hf-export", overwrite) as staged:  # locked for the whole command
        dataset_root = manifest.dataset_root(root)
        features = split_features(manifest)
        datasets.disable_progress_bars()
        files: dict[str, bytes] = {}
        shards: dict[str, int] = {}
        arrow_bytes: dict[str, int] = {}  # per split, what push_to_hub records as num_bytes (the Arrow table's size)
        for split in manifest.split_names:
            rows = manifest.split(split)
            _check_images(dataset_root, rows.paths)
            chunks = _chunks_by_size(dataset_root, rows.paths)
            shards[split] = len(chunks)
            arrow_bytes[split] = 0
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
                shard = datasets.Dataset.from_dict(columns, features=features)
                shard.to_parquet(buffer)
                arrow_bytes[split] += shard.data.nbytes
                files[f"data/{split}-{number:05d}-of-{len(chunks):05d}.parquet"] = buffer.getvalue()
        sizes = {split: {"num_bytes": arrow_bytes[split],
                         "download_bytes": sum(len(content) for path, content in files.items() if path.startswith(f"data/{split}-"))}
                 for split in shards}
        files["README.md"] = dataset_card(manifest, features, sizes).encode("utf-8")
        return staged.write(files)


def _check_images(root: Path, paths: list[str]) -> None:
    """Every image to embed is a file inside the dataset root (symlinks resolved) that decodes."""
    from fgood_bench.datasets.base import missing_files
    from fgood_bench.datasets.check import find_unreadable_images

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


def dataset_card(manifest: Manifest, features, sizes: dict[str, dict[str, int]]) -> str:
    """The README.md that ``push_to_hub`` would write: YAML front matter (configs, features with ClassLabel
    names, dataset_info with each split's num_bytes / num_examples, licence), then prose with the source
    dataset's terms and reference and the paper's citation. ``sizes``: per split, ``num_bytes`` (Arrow)
    and ``download_bytes`` (its Parquet files)."""
    import yaml

    from fgood_bench.manifests.sources import source_of

    info = manifest.data
    title = info["dataset"].get("title", info["dataset"]["id"])
    source = source_of(info["dataset"]["id"])
    feature_yaml = []
    for name, feature in features.items():
        dtype = type(feature).__name__
        if dtype == "ClassLabel":
            feature_yaml.append({"name": name, "dtype": {"class_label": {"names": {i: n for i, n in enumerate(feature.names)}}}})
        else:
            feature_yaml.append({"name": name, "dtype": "image" if dtype == "Image" else feature.dtype})
    download_size = sum(size["download_bytes"] for size in sizes.values())
    dataset_size = sum(size["num_bytes"] for size in sizes.values())
    header = {
        "pretty_name": f"{info['benchmark']} ({title}) — fgood-bench",
        "license": source.license,
        # "other" goes with the licence's name and link (https://huggingface.co/docs/hub/repositories-licenses);
        # the name is an id in the Hub card template's form, like `my-license-1.0`: no underscores
        **({"license_name": f"{info['dataset']['id'].replace('_', '-')}-terms", "license_link": source.homepage}
           if source.license == "other" else {}),
        "task_categories": ["image-classification"],
        "tags": ["out-of-distribution-detection", "fine-grained", "fgood-bench"],
        "configs": [{
            "config_name": "default",
            "data_files": [{"split": split, "path": f"data/{split}-*"} for split in sizes],
        }],
        "dataset_info": {  # the fields and order of push_to_hub's card (datasets' DatasetInfo._to_yaml_dict)
            "features": feature_yaml,
            "splits": [{"name": split, "num_bytes": sizes[split]["num_bytes"], "num_examples": info["splits"][split]["count"]}
                       for split in sizes],
            "download_size": download_size,
            "dataset_size": dataset_size,
        },
    }
    counts = "\n".join(f"| `{split}` | {info['splits'][split]['count']:,} |" for split in sizes)
    about = "".join(f"- {label}: {value}\n" for label, value in (
        ("Dataset", title), ("Project page", source.homepage), ("Terms", source.terms), ("Reference", source.reference)) if value)
    return (
        "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n\n"
        f"# {info['benchmark']}\n\n"
        f"Exported by fgood-bench {__version__} from the manifest `{info['benchmark']}` "
        f"({info['kind']}) of {title}. `label` is the in-distribution class (0..K-1) and -1 for "
        "out-of-distribution images; `class_name` is the original class; `path` is the image's path "
        "in the official download.\n\n| split | images |\n|---|---|\n" + counts + "\n\n"
        f"## Licence\n\n{LICENCE_NOTE.format(title=title)}\n\n## Source dataset\n\n{about}\n"
        f"## Citation\n\n```bibtex\n{PAPER_CITATION}\n```\n"
    )
