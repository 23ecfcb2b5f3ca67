"""The image sets of a benchmark that the stages share: its OOD sets as ``--ood`` names them, and the
ID validation images held out of id_train (evaluate scores them; train leaves them out for a sweep).

``load_benchmark_manifest`` is the one place that loads a benchmark and refuses other kinds of
manifest, or a benchmark whose splits share an image (:func:`check_benchmark`); :func:`check_set_name`
and :func:`check_ood_set` are the one validation of an OOD set's name and images against its
benchmark, used by every command that reads them (evaluate's ``--ood``, export's ``--far-ood``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fgood_bench.datasets.base import check_inside_root
from fgood_bench.errors import FgoodError, article
from fgood_bench.manifests.manifest import Manifest, SplitRows, named_manifest
from fgood_bench.manifests.verify import check_disjoint
from fgood_bench.outputs import output_name, sha256_file
from fgood_bench.paper import VALIDATION_FRACTION

HOLDOUT = "holdout"  # the benchmark's own holdout classes, as --ood names them
ID_SPLITS = ("id_test", "id_train", "id_val")  # the ID images no OOD set may share


def load_benchmark_manifest(path: str | Path, command: str) -> Manifest:
    """The benchmark manifest at ``path``; another kind of manifest is refused naming ``command``."""
    benchmark = Manifest.load(path)
    if benchmark.kind != "benchmark":
        article = "an" if benchmark.kind[:1] in "aeiou" else "a"
        raise FgoodError(f"{benchmark.path}: {article} {benchmark.kind} manifest; {command} needs a benchmark (build-splits)")
    return check_benchmark(benchmark)


def check_benchmark(benchmark: Manifest) -> Manifest:
    """What every command that reads a benchmark checks: its splits share no image (an OOD image in
    id_train, a training image evaluated as a test one)."""
    check_disjoint(benchmark)
    return benchmark


def check_set_name(name: str, option: str, taken: list[str] | tuple[str, ...] = ()) -> str:
    """An OOD set's name (a results column, an export's list file): one plain name as
    :func:`fgood_bench.outputs.output_name` has it, and not one ``taken`` already."""
    output_name(name, option)
    if name in taken:
        raise FgoodError(f"{option} {name!r}: the name is already used by another set (each name once)")
    return name


def check_ood_set(name: str, manifest: Manifest, benchmark: Manifest, option: str) -> SplitRows:
    """The ``ood_test`` rows of the OOD set ``name`` given with ``option``, after the checks every
    command makes: not the benchmark itself (its holdout classes are ``holdout``), an ``ood_test``
    split that is not empty, and no image shared with the benchmark's ID splits."""
    if manifest is not benchmark and _same_manifest(manifest, benchmark):
        raise FgoodError(f"{option} {name}={manifest.path}: the benchmark's own manifest; its holdout classes are "
                         f"already the near-OOD set {HOLDOUT!r}: give a coarse OOD set (build-ood-set)")
    if "ood_test" not in manifest.split_names:
        raise FgoodError(f"{manifest.path}: no ood_test split to evaluate against")
    rows = manifest.split("ood_test")
    if not rows.paths:
        raise FgoodError(f"{manifest.path}: the OOD set {name!r} is empty")
    if manifest is not benchmark and manifest.dataset == benchmark.dataset and manifest.dataset_options == benchmark.dataset_options:
        for split in ID_SPLITS:
            if split not in benchmark.split_names:
                continue
            overlap = set(rows.paths) & set(benchmark.split(split).paths)
            if overlap:
                what = "the ID test split" if split == "id_test" else f"the {split} split"
                raise FgoodError(f"{manifest.path}: OOD set {name!r} shares {len(overlap)} images with {what}, "
                                 f"e.g. {sorted(overlap)[0]}")
    return rows


def _same_manifest(a: Manifest, b: Manifest) -> bool:
    try:
        if a.path.resolve() == b.path.resolve():
            return True
    except OSError:
        pass
    return sha256_file(a.path) == sha256_file(b.path)


@dataclass
class ImageSet:
    name: str
    root: Path
    paths: list[str]
    labels: list[int]
    manifest: Manifest
    validation: bool = False  # validation outliers: scored against the ID validation images


def is_validation_outliers(manifest: Manifest) -> bool:
    """A ``build-ood-set synthetic-val`` set: generated from the benchmark's ID images (Appendix D.3)."""
    return manifest.kind == "ood_set" and "generated_from" in manifest.data.get("sample", {})


def resolve_ood_sets(specs: list[str], ood_roots: dict[str, Path], root: Path, benchmark: Manifest,
                     id_set: ImageSet) -> list[ImageSet]:
    """The OOD sets of ``--ood`` (``holdout`` or ``NAME=MANIFEST``) with their folders (``--ood-root NAME=DIR``, else
    ``root`` for a set of the benchmark's own dataset), checked against the ID test images."""
    sets = []
    for spec in specs:
        if spec == HOLDOUT:
            if any(s.name == HOLDOUT for s in sets):
                raise FgoodError(f"--ood {HOLDOUT!r} given twice")
            name, manifest = HOLDOUT, benchmark
            rows = check_ood_set(name, manifest, benchmark, "--ood")
            set_root = id_set.root
        else:
            name, path = named_manifest(spec)
            check_set_name(name, "--ood", [s.name for s in sets] + [HOLDOUT])
            manifest = Manifest.load(path)
            rows = check_ood_set(name, manifest, benchmark, "--ood")
            set_root = ood_set_root(name, manifest, ood_roots, root, benchmark.dataset)
        check_inside_root(set_root, rows.paths)
        sets.append(ImageSet(name, set_root, rows.paths, rows.labels, manifest, validation=is_validation_outliers(manifest)))
    unknown = sorted(set(ood_roots) - {s.name for s in sets})
    if unknown:
        raise FgoodError(f"--ood-root {unknown[0]}=...: no OOD set is named {unknown[0]!r} "
                         f"(the sets: {', '.join(s.name for s in sets)}; name one with --ood {unknown[0]}=MANIFEST)")
    return sets


def ood_set_root(name: str, manifest: Manifest, ood_roots: dict[str, Path], root: Path, benchmark_dataset: str) -> Path:
    """The OOD set's dataset folder: its --ood-root, else --root (a set of the benchmark's own dataset)."""
    if name in ood_roots:
        return manifest.dataset_root(ood_roots[name])
    if manifest.dataset != benchmark_dataset:  # --root is the benchmark's dataset: another one is not in it
        raise FgoodError(f"OOD set {name!r} is {article(manifest.dataset)} set and --root is the benchmark's {benchmark_dataset} "
                         f"folder: give the set's folder with --ood-root {name}=DIR")
    try:
        return manifest.dataset_root(root)
    except FgoodError as err:
        raise FgoodError(f"OOD set {name!r} is {article(manifest.dataset)} set, and --root is not its folder: give it with "
                         f"--ood-root {name}=DIR ({err})") from None


def outlier_set_root(manifest: Manifest, outlier_root: Path | None, root: Path, benchmark_dataset: str) -> Path:
    """The outlier set's dataset folder: --outlier-root, else --root when the set is of the benchmark's
    own dataset; a forgotten --outlier-root is named rather than reported as a wrong dataset folder."""
    if outlier_root is not None:
        return manifest.dataset_root(outlier_root)
    if manifest.dataset != benchmark_dataset:
        raise FgoodError(f"the outlier set is {article(manifest.dataset)} set and --root is the benchmark's {benchmark_dataset} "
                         f"folder: give the outliers' folder with --outlier-root DIR")
    return manifest.dataset_root(root)


@dataclass
class Validation:
    """The held-out ID validation images: the benchmark's ``id_val`` split, or a seeded share of
    each class's ``id_train`` images (``carved``: a boolean mask over ``id_train``)."""

    images: ImageSet
    carved: np.ndarray | None
    record: dict


def can_hold_out_validation(benchmark: Manifest) -> bool:
    """Whether :func:`id_validation` finds images: an id_val split, or a class of 2+ id_train images."""
    if "id_val" in benchmark.split_names:
        return True
    return bool((np.bincount(np.asarray(benchmark.split("id_train").labels, dtype=np.int64)) >= 2).any())


def id_validation(benchmark: Manifest, root: Path, seed: int) -> Validation:
    if "id_val" in benchmark.split_names:
        rows = benchmark.split("id_val")
        record = {"source": "the benchmark's id_val split", "count": len(rows.paths)}
        return Validation(ImageSet("id_val", root, rows.paths, rows.labels, benchmark), None, record)
    rows = benchmark.split("id_train")
    labels = np.asarray(rows.labels)
    rng = np.random.default_rng(seed)
    carved = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) >= 2:  # a class with one image keeps it for fitting
            carved[rng.choice(members, max(1, round(VALIDATION_FRACTION * len(members))), replace=False)] = True
    paths = [p for p, keep in zip(rows.paths, carved) if keep]
    if not paths:
        raise FgoodError(f"{benchmark.path}: no id_val split and too few id_train images to hold out ID validation images")
    record = {"source": "carved from id_train", "fraction_per_class": VALIDATION_FRACTION, "seed": seed, "count": len(paths),
              "paths_sha256": hashlib.sha256("\n".join(paths).encode()).hexdigest()}
    images = ImageSet("id_val", root, paths, labels[carved].tolist(), benchmark)
    return Validation(images, carved, record)


def held_out_in_training(validation: Validation, payload: dict) -> bool:
    """Whether the model was trained without the ID validation images: always so for the benchmark's
    id_val split; for images carved from id_train, when the checkpoint records that it left out
    the same images (``train`` with ``hold_out_validation``, as ``sweep`` trains)."""
    if validation.carved is None:
        return True
    held_out = payload.get("held_out_id_validation")
    return isinstance(held_out, dict) and held_out.get("paths_sha256") == validation.record["paths_sha256"]


def without_validation(benchmark: Manifest, rows: SplitRows, root: Path, seed: int | None) -> tuple[SplitRows, dict | None]:
    """id_train without the ID validation images evaluate carves with ``seed`` (none where the
    benchmark has an id_val split), and their record (None when nothing is held out)."""
    if seed is None:
        return rows, None
    validation = id_validation(benchmark, root, seed)
    if validation.carved is None:
        return rows, None
    keep = ~validation.carved
    kept = SplitRows([p for p, k in zip(rows.paths, keep) if k], [y for y, k in zip(rows.labels, keep) if k],
                     [c for c, k in zip(rows.class_names, keep) if k],
                     [h for h, k in zip(rows.sha256, keep) if k] if rows.sha256 is not None else None)
    return kept, validation.record
