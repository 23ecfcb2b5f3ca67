"""``fgood-bench evaluate``: score a benchmark's ID test images against its holdout and coarse OOD sets.

One forward pass per image feeds every scorer. The results state the metric convention and the
base rate they were computed at, and every setting the numbers depend on; per-image scores are
kept for reuse. Validation outliers (``build-ood-set synthetic-val``, Appendix D.3) are scored
against held-out ID validation images, never against the ID test images.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from torch import nn

from fgood_bench import __version__
from fgood_bench.datasets.base import check_inside_root
from fgood_bench.errors import FgoodError
from fgood_bench.evaluation.forward import FEATURE_LAYERS, forward_outputs
from fgood_bench.evaluation.plots import EVALUATE_FILES
from fgood_bench.evaluation.report import write_reports
from fgood_bench.evaluation.scorers import Scorer, make_scorers
from fgood_bench.manifests.manifest import Manifest, named_manifest
from fgood_bench.evaluation.protocol import protocol_name
from fgood_bench.manifests.verify import check_disjoint
from fgood_bench.metrics import CONVENTIONS, METRICS, check_convention, ood_metrics, ood_metrics_at_base_rate
from fgood_bench.outputs import atomic_write, clear_outputs, run_folder, sha256_file
from fgood_bench.training.engine import TrainConfig, seed_everything, setup_runtime
from fgood_bench.training.data import Geometry
from fgood_bench.training.models import load_classifier


@dataclass
class EvaluateRequest:
    checkpoint: Path | None  # None when the Python API hands evaluate() a model
    manifest: Path
    root: Path
    out: Path | None  # None: return the results, write nothing
    ood: list[str] = field(default_factory=lambda: ["holdout"])  # "holdout" or "NAME=MANIFEST"
    ood_roots: dict[str, Path] = field(default_factory=dict)  # NAME -> dataset root (default: root)
    scorers: list[str] = field(default_factory=lambda: ["msp", "odin", "energy", "maxlogit"])
    config: TrainConfig = field(default_factory=lambda: TrainConfig(weights=None))  # its arch, image size and amp are not read
    amp: bool = False  # True: float16 backbone on CUDA (fast, not exact); default strict float32 (training/precision.py)
    arch: str | None = None  # of a bare state dict; a checkpoint names its own
    image_size: int | None = None  # None: the checkpoint's (448 for a bare state dict)
    base_rate: float | None = None
    metric_convention: str = "paper"  # a key of fgood_bench.metrics.CONVENTIONS
    repeats: int = 10
    seed: int = 0  # every random choice: base-rate draws, the carved ID validation images
    odin_epsilon: float = 0.0  # in [0, 1] pixel units
    gram_orders: int = 10
    feature_layers: str = "stages"  # or "blocks": what Mahalanobis and Gram read
    plots: bool = False
    overwrite: bool = False  # replace the results of an earlier evaluation in --out
    progress: bool = True
    transform: Callable | None = None  # PIL image -> normalised input tensor; None: the paper's test transform


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


def resolve_ood_sets(request: EvaluateRequest, benchmark: Manifest, id_set: ImageSet) -> list[ImageSet]:
    sets = []
    for spec in request.ood:
        if spec == "holdout":
            name, manifest, root = "holdout", benchmark, id_set.root
        else:
            name, path = named_manifest(spec)
            manifest = Manifest.load(path)
            root = _ood_root(name, manifest, request, benchmark.dataset)
        if "ood_test" not in manifest.split_names:
            raise FgoodError(f"{manifest.path}: no ood_test split to evaluate against")
        rows = manifest.split("ood_test")
        if not rows.paths:
            raise FgoodError(f"{manifest.path}: the OOD set {name!r} is empty")
        check_inside_root(root, rows.paths)
        if manifest.dataset == benchmark.dataset and manifest.dataset_options == benchmark.dataset_options:
            overlap = set(rows.paths) & set(id_set.paths)
            if overlap:
                raise FgoodError(f"{manifest.path}: OOD set {name!r} shares {len(overlap)} images with the ID test split, "
                                 f"e.g. {sorted(overlap)[0]}")
        if any(s.name == name for s in sets):
            raise FgoodError(f"--ood {name!r} given twice")
        sets.append(ImageSet(name, root, rows.paths, rows.labels, manifest, validation=is_validation_outliers(manifest)))
    unknown = sorted(set(request.ood_roots) - {s.name for s in sets})
    if unknown:
        raise FgoodError(f"--ood-root {unknown[0]}=...: no OOD set is named {unknown[0]!r} "
                         f"(the sets: {', '.join(s.name for s in sets)}; name one with --ood {unknown[0]}=MANIFEST)")
    return sets


def _ood_root(name: str, manifest: Manifest, request: EvaluateRequest, benchmark_dataset: str) -> Path:
    """The OOD set's dataset folder: its --ood-root, else --root (a set of the benchmark's own dataset)."""
    if name in request.ood_roots:
        return manifest.dataset_root(request.ood_roots[name])
    if manifest.dataset != benchmark_dataset:  # --root is the benchmark's dataset: another one is not in it
        raise FgoodError(f"OOD set {name!r} is a {manifest.dataset} set and --root is the benchmark's {benchmark_dataset} "
                         f"folder: give the set's folder with --ood-root {name}=DIR")
    try:
        return manifest.dataset_root(request.root)
    except FgoodError as err:
        raise FgoodError(f"OOD set {name!r} is a {manifest.dataset} set, and --root is not its folder: give it with "
                         f"--ood-root {name}=DIR ({err})") from None


# Share of each class's id_train images held out as ID validation images when the benchmark has
# no id_val split. Sastry & Oore's Gram code normalises the deviations on a random 10% of the ID
# images it does not score (VectorInstitute/gram-ood-detection, ``detect``).
VALIDATION_FRACTION = 0.1
PAPER_IMAGE_SIZE = 448  # Appendix D.1: Resize((512, 512)), CenterCrop(448); for bare state dicts


def model_geometry(payload: dict, image_size: int | None, checkpoint: Path) -> tuple[Geometry, str]:
    """The resize and crop the model was trained with (from the checkpoint), or ``image_size``.

    Returns the geometry and where it came from. An explicit size that differs from the
    checkpoint's is honoured, with a warning on stderr, keeping the checkpoint's resize ratio.
    """
    stored = None
    if isinstance(payload.get("geometry"), dict):
        try:
            stored = Geometry(**payload["geometry"])
        except TypeError:
            expected = ", ".join(f.name for f in fields(Geometry))
            raise FgoodError(f"{checkpoint}: unknown resize rule {payload['geometry']} (expected the fields {expected})") from None
    elif payload.get("image_size"):
        stored = Geometry.for_crop(int(payload["image_size"]), payload.get("resize_mode", "square"))
    if image_size is None:
        return (stored, "checkpoint") if stored else (Geometry.for_crop(PAPER_IMAGE_SIZE), "default (paper, Appendix D.1)")
    if stored is None:
        return Geometry.for_crop(image_size), "--image-size"
    if image_size == stored.crop:
        return stored, "checkpoint"
    print(f"warning: {checkpoint} was trained at image size {stored.crop}; evaluating at --image-size {image_size} "
          f"as asked, so the numbers are not those of the trained model's resolution", file=sys.stderr)
    return replace(stored, crop=image_size, resize=round(image_size * stored.resize / stored.crop)), "--image-size"


@dataclass
class Validation:
    """The held-out ID validation images: the benchmark's ``id_val`` split, or a seeded share of
    each class's ``id_train`` images (``carved``: a boolean mask over ``id_train``)."""

    images: ImageSet
    carved: np.ndarray | None
    record: dict


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


def _subset(outputs: dict, mask: np.ndarray) -> dict:
    """The rows ``mask`` of every output of :func:`forward_outputs`."""
    return {k: [v[mask] for v in value] if isinstance(value, list) else value[mask] for k, value in outputs.items()}


def evaluate(request: EvaluateRequest, model: nn.Module | None = None, scorers: list[Scorer] | None = None) -> dict:
    """Run the evaluation; writes the reports into ``request.out`` (unless None) and returns the results.

    ``model`` / ``scorers``: already built (the Python API, ``fgood_bench.evaluate_model``); by default the
    checkpoint's classifier and ``request.scorers``."""
    benchmark = Manifest.load(request.manifest)
    if benchmark.kind != "benchmark":
        raise FgoodError(f"{benchmark.path}: a {benchmark.kind} manifest; evaluate needs a benchmark (build-splits)")
    check_disjoint(benchmark)
    classifier_scorers = scorers is None  # built-in scorers read a K-way classifier's outputs
    scorers = make_scorers(request.scorers) if scorers is None else scorers
    check_convention(request.metric_convention)
    if request.feature_layers not in FEATURE_LAYERS:
        raise FgoodError(f"--feature-layers {request.feature_layers!r}: choose from {', '.join(FEATURE_LAYERS)}")
    if request.out is None:  # the Python API: results only
        return _evaluate(request, benchmark, scorers, model, classifier_scorers)
    with run_folder(Path(request.out), "evaluate", reuse=request.overwrite, owned=EVALUATE_FILES):
        return _evaluate(request, benchmark, scorers, model, classifier_scorers)


def _evaluate(request: EvaluateRequest, benchmark: Manifest, scorers: list, model: nn.Module | None,
              classifier_scorers: bool) -> dict:
    id_root = benchmark.dataset_root(request.root)
    id_rows = benchmark.split("id_test")
    if not id_rows.paths:
        raise FgoodError(f"{benchmark.path}: the id_test split is empty; there is nothing to evaluate")
    check_inside_root(id_root, id_rows.paths)
    id_set = ImageSet("id", id_root, id_rows.paths, id_rows.labels, benchmark)
    ood_sets = resolve_ood_sets(request, benchmark, id_set)

    classes = benchmark.id_class_names
    if model is None:
        model, payload = load_classifier(request.checkpoint, len(classes), request.arch, request.image_size)
        if "classes" in payload and list(payload["classes"]) != classes:
            raise FgoodError(f"{request.checkpoint}: trained on other classes than the benchmark's ID classes")
        arch = payload.get("arch", request.arch)
        if request.arch and arch != request.arch:
            raise FgoodError(f"{request.checkpoint}: a {arch} checkpoint; --arch {request.arch} cannot load it (omit --arch)")
    else:  # a user's model (fgood_bench.evaluate_model)
        payload, arch = {}, request.arch or type(model).__name__
    geometry, geometry_source = model_geometry(payload, request.image_size, Path(request.checkpoint or "the model"))
    config = replace(request.config, arch=arch, image_size=geometry.crop)
    runtime = setup_runtime(config.device)
    if runtime.world > 1:
        raise FgoodError("evaluate runs in one process; launch it without torchrun")
    seed_everything(request.seed)
    needs = set().union(*(s.needs for s in scorers))

    def outputs_of(image_set: ImageSet, desc: str) -> dict:
        return forward_outputs(model, image_set.root, image_set.paths, config, runtime, needs, geometry=geometry,
                               gram_orders=request.gram_orders, layers=request.feature_layers,
                               odin_epsilon=request.odin_epsilon if "odin" in request.scorers else 0.0,
                               amp=request.amp and runtime.cuda, progress=request.progress, desc=desc, transform=request.transform)

    fitted = [s for s in scorers if s.needs & {"pooled", "gram"}]
    uses_validation = any(s.needs_validation for s in scorers) or any(s.validation for s in ood_sets)
    validation = id_validation(benchmark, id_root, request.seed) if uses_validation else None
    validation_outputs = None
    if fitted:
        train_rows = benchmark.split("id_train")
        check_inside_root(id_root, train_rows.paths)
        train_labels = np.asarray(train_rows.labels)
        train = outputs_of(ImageSet("id_train", id_root, train_rows.paths, train_rows.labels, benchmark), "fitting (id_train)")
        outside = np.ones(len(train_labels), bool)  # the training images outside the ID validation images
        if validation is not None and validation.carved is not None:
            validation_outputs, outside = _subset(train, validation.carved), ~validation.carved
        for scorer in fitted:
            if scorer.needs_validation:
                if validation_outputs is None:
                    validation_outputs = outputs_of(validation.images, "scoring id_val")
                scorer.fit(_subset(train, outside), train_labels[outside], validation=validation_outputs)
            else:  # Mahalanobis: every ID training image, as Lee et al.
                scorer.fit(train, train_labels)
    if validation is not None and validation_outputs is None:
        validation_outputs = outputs_of(validation.images, "scoring id_val")
    id_outputs = outputs_of(id_set, "scoring id_test")
    set_outputs = {s.name: outputs_of(s, f"scoring {s.name}") for s in ood_sets}

    scores = {"id": _scores(scorers, id_outputs)}
    scores.update({name: _scores(scorers, outputs) for name, outputs in set_outputs.items()})
    validation_scored = any(s.validation for s in ood_sets)
    if validation_scored:
        scores["id_val"] = _scores(scorers, validation_outputs)
    degenerate = degenerate_scorers(scores, [s.name for s in scorers])
    for name, spread, count in degenerate:
        print(f"fgood-bench: warning: the {name} scorer gives (nearly) the same score to all {count:,} images "
              f"(spread {spread:.3g}): its metrics say nothing about OOD detection", file=sys.stderr)
    is_classifier = id_outputs["logits"].shape[1] == len(classes)  # not so for a score function's (N, 1) outputs
    if classifier_scorers and not is_classifier:
        raise FgoodError(f"the model gives {id_outputs['logits'].shape[1]} outputs per image, the benchmark has {len(classes)} ID classes")
    accuracy = float(np.mean(id_outputs["logits"].argmax(axis=1) == np.asarray(id_rows.labels))) if is_classifier else None
    validation_accuracy = None  # Appendix D.3 selects "while the ID classification accuracy is minimally affected"
    if validation is not None and is_classifier:
        validation_accuracy = float(np.mean(validation_outputs["logits"].argmax(axis=1) == np.asarray(validation.images.labels)))
        validation.record["held_out_in_training"] = held_out_in_training(validation, payload)
    metrics = {}
    for image_set in ood_sets:
        metrics[image_set.name] = {}
        reference = "id_val" if image_set.validation else "id"
        for scorer in scorers:
            id_scores, ood_scores = scores[reference][scorer.name], scores[image_set.name][scorer.name]
            if request.base_rate:
                metrics[image_set.name][scorer.name] = ood_metrics_at_base_rate(
                    id_scores, ood_scores, request.base_rate, request.repeats, request.seed, request.metric_convention)
            else:
                metrics[image_set.name][scorer.name] = ood_metrics(id_scores, ood_scores, request.metric_convention)

    results = {
        "toolkit": f"fgood-bench {__version__}",
        "protocol": protocol_name(request.base_rate, request.metric_convention),
        "metric_convention": request.metric_convention,
        "convention": CONVENTIONS[request.metric_convention],
        "base_rate": ({"id_to_ood": request.base_rate, "repeats": request.repeats, "seed": request.seed}
                      if request.base_rate else "none: all images of each set"),
        "metrics_reported": list(METRICS),
        "benchmark": {"name": benchmark.name, "manifest_sha256": sha256_file(benchmark.path)},
        "checkpoint_sha256": sha256_file(Path(request.checkpoint)) if request.checkpoint else None,
        "training": {"method": payload.get("method"), "fine_tuned": payload.get("fine_tuned_from") is not None},
        "model": {"method": payload.get("method", "unknown") if request.checkpoint else getattr(model, "description", type(model).__name__),
                  "arch": arch, "checkpoint": str(request.checkpoint) if request.checkpoint else None},
        "id_accuracy": accuracy,
        "id_val_accuracy": validation_accuracy,
        "counts": {"id_test": len(id_set.paths), **({"id_val": len(validation.images.paths)} if validation_scored else {}),
                   **{s.name: len(s.paths) for s in ood_sets}},
        "ood_sets": {s.name: {"dataset": s.manifest.dataset, "manifest_sha256": sha256_file(s.manifest.path),
                              "scored_against": "id_val" if s.validation else "id_test"} for s in ood_sets},
        "scorers": [s.name for s in scorers],
        "settings": {
            "seed": request.seed,
            "model": {"arch": arch, "image_size": geometry.crop, "geometry": asdict(geometry) | {"source": geometry_source},
                      "precision": _precision(request.amp, runtime)},
            "scorers": {s.name: _scorer_settings(s.name, request) for s in scorers},
            "id_validation": validation.record if validation is not None else None,
        },
        "metrics": metrics,
        "degenerate_scorers": [name for name, _, _ in degenerate],
    }
    if request.out is None:
        return results
    out = Path(request.out)
    clear_outputs(out, ("results.json",))  # first (written last): its absence marks an incomplete evaluation
    clear_outputs(out, EVALUATE_FILES)
    written = [*ood_sets, *([replace(validation.images, name="id_val")] if validation_scored else [])]
    _write_scores(out / "scores.parquet", id_set, written, scores, [s.name for s in scorers])
    if request.plots:
        from fgood_bench.evaluation import plots

        title = f"{benchmark.name} · {plots.model_label(results['model'], Path(request.checkpoint).name)}"
        confidence = {name: _msp(outputs) for name, outputs in (("id", id_outputs), *set_outputs.items())}
        plots.plot_confidence(confidence, out / "confidence.png", title=f"{title}: MSP")
        coarse = next((s for s in ood_sets if s.name != "holdout"), ood_sets[0])
        panels = plots.interpolation_confidences(model, id_set, coarse, config, runtime, geometry)
        plots.write_interpolation(panels, coarse.name, out / "interpolation.parquet")
        plots.plot_interpolation(panels, out / "interpolation.png", title=title, ood_name=coarse.name)
    write_reports(results, out)
    return results


def _precision(amp: bool, runtime) -> str:
    from fgood_bench.training.precision import describe

    return describe(amp and runtime.cuda, runtime.cuda)


def _scorer_settings(name: str, request: EvaluateRequest) -> dict:
    """The parameters a scorer's numbers depend on (sources in docs/evaluation.md)."""
    if name == "odin":
        return {"temperature": 1000.0, "epsilon": request.odin_epsilon,
                "epsilon_unit": "[0, 1] pixels: the step on the normalised input is divided by each channel's std"}
    if name == "energy":
        return {"temperature": 1.0}
    if name == "mahalanobis":
        return {"feature_layers": request.feature_layers, "fitted_on": "id_train", "aggregation": "sum"}
    if name == "gram":
        return {"feature_layers": request.feature_layers, "orders": request.gram_orders,
                "bounds_from": "id_train outside the ID validation images", "normalised_on": "id_val"}
    return {}


def degenerate_scorers(scores: dict[str, dict[str, np.ndarray]], names: list[str],
                       tolerance: float = 1e-6) -> list[tuple[str, float, int]]:
    """(scorer, spread, images) for each scorer whose scores over every image, ID and OOD, are
    equal or nearly (spread at most ``tolerance`` times their magnitude): no threshold separates
    anything, and its FPR95 / AUROC are artefacts of tie handling."""
    found = []
    for name in names:
        values = np.concatenate([by_scorer[name] for by_scorer in scores.values()])
        spread = float(np.ptp(values)) if values.size else 0.0
        if spread <= tolerance * max(1.0, float(np.abs(values).max(initial=0.0))):
            found.append((name, spread, int(values.size)))
    return found


def _msp(outputs: dict) -> np.ndarray:
    from fgood_bench.evaluation.scorers import MSP

    return MSP().score(outputs)


def _scores(scorers, outputs: dict) -> dict[str, np.ndarray]:
    result = {}
    for scorer in scorers:
        values = np.asarray(scorer.score(outputs), np.float64)
        if not np.isfinite(values).all():
            raise FgoodError(f"the {scorer.name} scorer produced NaN or inf scores (a diverged model, or overflow)")
        result[scorer.name] = values
    return result


def _write_scores(path: Path, id_set: ImageSet, ood_sets: list[ImageSet], scores: dict, names: list[str]) -> None:
    """Per-image scores: path, set, label, one column per scorer."""
    sets = [id_set, *ood_sets]
    columns = {
        "path": [p for s in sets for p in s.paths],
        "set": [("id" if s is id_set else s.name) for s in sets for _ in s.paths],
        "label": [label for s in sets for label in s.labels],
    }
    for name in names:
        columns[name] = np.concatenate([scores["id" if s is id_set else s.name][name] for s in sets])
    table = pa.table(columns)
    atomic_write(path, lambda partial: pq.write_table(table, partial))
