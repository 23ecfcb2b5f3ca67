"""``fgood-bench evaluate``: score a benchmark's ID test images against its holdout and coarse OOD sets.

One forward pass per image feeds every scorer. The results state the metric convention and the
base rate they were computed at, and every setting the numbers depend on; per-image scores are
kept for reuse. Validation outliers (``build-ood-set synthetic-val``, Appendix D.3) are scored
against held-out ID validation images, never against the ID test images.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from torch import nn

from fgood_bench import __version__
from fgood_bench.datasets.base import check_inside_root
from fgood_bench.errors import FgoodError
from fgood_bench.evaluation.forward import forward_outputs
from fgood_bench.evaluation.plots import EVALUATE_FILES
from fgood_bench.tools.figures import FigureFormat
from fgood_bench.evaluation.report import write_reports
from fgood_bench.evaluation.scorers import Scorer, make_scorers
from fgood_bench.manifests.image_sets import (
    ImageSet, Validation, held_out_in_training, id_validation, load_benchmark_manifest, resolve_ood_sets,
)
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.metrics import CONVENTIONS, METRICS, ood_metrics, ood_metrics_at_base_rate
from fgood_bench.outputs import atomic_write, clear_outputs, run_folder, sha256_file
from fgood_bench.tools.models import load_checked_classifier
from fgood_bench.tools.runtime import Runtime, seed_everything, setup_runtime
from fgood_bench.tools.settings import Requested, Settings, resolve_settings


@dataclass
class EvaluateRequest:
    checkpoint: Path | None  # None when the Python API hands evaluate() a model
    manifest: Path
    root: Path
    out: Path | None  # None: return the results, write nothing
    ood: list[str] = field(default_factory=lambda: ["holdout"])  # "holdout" or "NAME=MANIFEST"
    ood_roots: dict[str, Path] = field(default_factory=dict)  # NAME -> dataset root (default: root)
    scorers: list[str] = field(default_factory=lambda: ["msp", "odin", "energy", "maxlogit"])
    # What the user asked for (None: not said); resolved once, with the checkpoint's record and the
    # benchmark's recipe, into the Settings every number depends on (tools/settings.py)
    requested: Requested = field(default_factory=Requested)
    arch: str | None = None  # of a bare state dict; a checkpoint names its own
    batch_size: int = 32  # the model's training batch size; scoring uses twice it
    device: str = "auto"
    workers: int | None = None
    seed: int = 0  # every random choice: base-rate draws, the carved ID validation images
    plots: bool = False
    figures: FigureFormat | None = None  # the --plots figures' formats and dpi (None: PNG at 120 dpi)
    overwrite: bool = False  # replace the results of an earlier evaluation in --out
    progress: bool = True
    transform: Callable | None = None  # PIL image -> normalised input tensor; None: the paper's test transform


def _subset(outputs: dict, mask: np.ndarray) -> dict:
    """The rows ``mask`` of every output of :func:`forward_outputs`."""
    return {k: [v[mask] for v in value] if isinstance(value, list) else value[mask] for k, value in outputs.items()}


def evaluate(request: EvaluateRequest, model: nn.Module | None = None, scorers: list[Scorer] | None = None) -> dict:
    """Run the evaluation; writes the reports into ``request.out`` (unless None) and returns the results.

    ``model`` / ``scorers``: already built (the Python API, ``fgood_bench.evaluate_model``); by default the
    checkpoint's classifier and ``request.scorers``."""
    benchmark = load_benchmark_manifest(request.manifest, "evaluate")
    if scorers is None:
        make_scorers(request.scorers)  # unknown names are refused before anything is read or written
    if request.out is None:  # the Python API: results only
        return _evaluate(request, benchmark, scorers, model)
    with run_folder(Path(request.out), "evaluate", reuse=request.overwrite, owned=EVALUATE_FILES):
        return _evaluate(request, benchmark, scorers, model)


@dataclass
class _Run:
    """What one evaluation works with once its inputs are resolved."""

    request: EvaluateRequest
    benchmark: Manifest
    model: nn.Module
    payload: dict  # the checkpoint's record ({} for a model without one)
    arch: str
    settings: Settings
    runtime: Runtime
    scorers: list

    def outputs_of(self, image_set: ImageSet, desc: str) -> dict:
        request = self.request
        settings = self.settings if self.runtime.cuda else replace(self.settings, amp=False)  # --amp is for CUDA only
        needs = set().union(*(s.needs for s in self.scorers))
        return forward_outputs(self.model, image_set.root, image_set.paths, self.runtime, needs, settings,
                               batch_size=request.batch_size * 2, workers=request.workers,
                               odin=any(s.name == "odin" for s in self.scorers), progress=request.progress, desc=desc,
                               transform=request.transform)


def _model(request: EvaluateRequest, benchmark: Manifest, model: nn.Module | None) -> tuple[nn.Module, dict, str]:
    """The classifier to score, the checkpoint record its settings come from, and its architecture."""
    if model is None:
        return load_checked_classifier(request.checkpoint, benchmark.id_class_names, "the benchmark's ID classes",
                                       request.arch)
    recorded = getattr(model, "fgood_bench_checkpoint", None)  # a model loaded from a fgood-bench checkpoint
    if isinstance(recorded, dict):
        if "classes" in recorded and list(recorded["classes"]) != benchmark.id_class_names:
            raise FgoodError(f"{recorded.get('path')}: trained on other classes than the benchmark's ID classes")
        return model, recorded, recorded.get("arch", request.arch or type(model).__name__)
    return model, {}, request.arch or type(model).__name__


def _evaluate(request: EvaluateRequest, benchmark: Manifest, scorers: list | None, model: nn.Module | None) -> dict:
    classifier_scorers = scorers is None  # built-in scorers read a K-way classifier's outputs
    id_root = benchmark.dataset_root(request.root)
    id_rows = benchmark.split("id_test")
    if not id_rows.paths:
        raise FgoodError(f"{benchmark.path}: the id_test split is empty; there is nothing to evaluate")
    check_inside_root(id_root, id_rows.paths)
    id_set = ImageSet("id", id_root, id_rows.paths, id_rows.labels, benchmark)
    ood_sets = resolve_ood_sets(request.ood, request.ood_roots, request.root, benchmark, id_set)
    model, payload, arch = _model(request, benchmark, model)
    settings = resolve_settings(request.requested, checkpoint=payload, model=model,
                                checkpoint_name=str(payload.get("path") or request.checkpoint or "the model"),
                                benchmark=(benchmark.name, benchmark.dataset))
    scorers = make_scorers(request.scorers, settings) if classifier_scorers else scorers
    runtime = setup_runtime(request.device)
    if runtime.world > 1:
        raise FgoodError("evaluate runs in one process; launch it without torchrun")
    seed_everything(request.seed)
    run = _Run(request, benchmark, model, payload, arch, settings, runtime, scorers)

    uses_validation = any(s.needs_validation for s in scorers) or any(s.validation for s in ood_sets)
    validation = id_validation(benchmark, id_root, request.seed) if uses_validation else None
    validation_outputs = _fit_scorers(run, id_root, validation)
    if validation is not None and validation_outputs is None:
        validation_outputs = run.outputs_of(validation.images, "scoring id_val")
    id_outputs = run.outputs_of(id_set, "scoring id_test")
    set_outputs = {s.name: run.outputs_of(s, f"scoring {s.name}") for s in ood_sets}

    scores = {"id": _scores(scorers, id_outputs)}
    scores.update({name: _scores(scorers, outputs) for name, outputs in set_outputs.items()})
    validation_scored = any(s.validation for s in ood_sets)
    if validation_scored:
        scores["id_val"] = _scores(scorers, validation_outputs)
    degenerate = degenerate_scorers(scores, [s.name for s in scorers])
    for name, spread, count in degenerate:
        print(f"fgood-bench: warning: the {name} scorer gives (nearly) the same score to all {count:,} images "
              f"(spread {spread:.3g}): its metrics say nothing about OOD detection", file=sys.stderr)
    classes = benchmark.id_class_names
    is_classifier = id_outputs["logits"].shape[1] == len(classes)  # not so for a score function's (N, 1) outputs
    if classifier_scorers and not is_classifier:
        raise FgoodError(f"the model gives {id_outputs['logits'].shape[1]} outputs per image, the benchmark has {len(classes)} ID classes")
    accuracy = float(np.mean(id_outputs["logits"].argmax(axis=1) == np.asarray(id_rows.labels))) if is_classifier else None
    validation_accuracy = None  # Appendix D.3 selects "while the ID classification accuracy is minimally affected"
    if validation is not None and is_classifier:
        validation_accuracy = float(np.mean(validation_outputs["logits"].argmax(axis=1) == np.asarray(validation.images.labels)))
        validation.record["held_out_in_training"] = held_out_in_training(validation, payload)
        if not validation.record["held_out_in_training"]:  # fitting / selection on images the model has seen
            print(f"fgood-bench: warning: the {len(validation.images.paths):,} ID validation images "
                  f"({validation.record['source']}) were in the model's training set: Gram's normalisation and "
                  "validation-outlier metrics read images the model has seen (train with the sweep, or a benchmark "
                  "with an id_val split, to hold them out)", file=sys.stderr)
    metrics = _metrics(ood_sets, scorers, scores, settings, request.seed)
    results = _results(run, id_set, ood_sets, validation if validation_scored else None, validation, metrics,
                       accuracy, validation_accuracy, degenerate)
    if request.out is None:
        return results
    _write(run, results, id_set, ood_sets, validation if validation_scored else None, scores, id_outputs, set_outputs)
    return results


def _fit_scorers(run: _Run, id_root: Path, validation: Validation | None) -> dict | None:
    """Fit the feature scorers on id_train (Mahalanobis: all of it, as Lee et al.; Gram: outside the ID
    validation images, normalised on them). Returns the ID validation images' outputs when computed here."""
    fitted = [s for s in run.scorers if s.needs & {"pooled", "gram"}]
    if not fitted:
        return None
    train_rows = run.benchmark.split("id_train")
    check_inside_root(id_root, train_rows.paths)
    train_labels = np.asarray(train_rows.labels)
    train = run.outputs_of(ImageSet("id_train", id_root, train_rows.paths, train_rows.labels, run.benchmark), "fitting (id_train)")
    outside = np.ones(len(train_labels), bool)  # the training images outside the ID validation images
    validation_outputs = None
    if validation is not None and validation.carved is not None:
        validation_outputs, outside = _subset(train, validation.carved), ~validation.carved
    for scorer in fitted:
        if scorer.needs_validation:
            if validation_outputs is None:
                validation_outputs = run.outputs_of(validation.images, "scoring id_val")
            scorer.fit(_subset(train, outside), train_labels[outside], validation=validation_outputs)
        else:  # Mahalanobis: every ID training image, as Lee et al.
            scorer.fit(train, train_labels)
    return validation_outputs


def _metrics(ood_sets: list[ImageSet], scorers: list, scores: dict, settings: Settings, seed: int) -> dict:
    metrics = {}
    for image_set in ood_sets:
        metrics[image_set.name] = {}
        reference = "id_val" if image_set.validation else "id"
        for scorer in scorers:
            id_scores, ood_scores = scores[reference][scorer.name], scores[image_set.name][scorer.name]
            if settings.base_rate:
                metrics[image_set.name][scorer.name] = ood_metrics_at_base_rate(
                    id_scores, ood_scores, settings.base_rate, settings.repeats, seed, settings.metric_convention)
            else:
                metrics[image_set.name][scorer.name] = ood_metrics(id_scores, ood_scores, settings.metric_convention)
    return metrics


def _results(run: _Run, id_set: ImageSet, ood_sets: list[ImageSet], scored_validation: Validation | None,
             validation: Validation | None, metrics: dict, accuracy, validation_accuracy, degenerate) -> dict:
    request, settings, payload, model = run.request, run.settings, run.payload, run.model
    checkpoint = request.checkpoint or payload.get("path")
    geometry = settings.geometry
    return {
        "toolkit": f"fgood-bench {__version__}",
        "protocol": settings.protocol,
        "metric_convention": settings.metric_convention,
        "convention": CONVENTIONS[settings.metric_convention],
        "base_rate": ({"id_to_ood": settings.base_rate, "repeats": settings.repeats, "seed": request.seed}
                      if settings.base_rate else "none: all images of each set"),
        "metrics_reported": list(METRICS),
        "benchmark": {"name": run.benchmark.name, "manifest_sha256": sha256_file(run.benchmark.path)},
        "checkpoint_sha256": sha256_file(Path(checkpoint)) if checkpoint and Path(checkpoint).is_file() else None,
        "training": {"method": payload.get("method"), "fine_tuned": payload.get("fine_tuned_from") is not None},
        "model": {"method": payload.get("method", "unknown") if checkpoint else getattr(model, "description", type(model).__name__),
                  "arch": run.arch, "checkpoint": str(checkpoint) if checkpoint else None},
        "id_accuracy": accuracy,
        "id_val_accuracy": validation_accuracy,
        "counts": {"id_test": len(id_set.paths), **({"id_val": len(scored_validation.images.paths)} if scored_validation else {}),
                   **{s.name: len(s.paths) for s in ood_sets}},
        "ood_sets": {s.name: {"dataset": s.manifest.dataset, "manifest_sha256": sha256_file(s.manifest.path),
                              "scored_against": "id_val" if s.validation else "id_test"} for s in ood_sets},
        "scorers": [s.name for s in run.scorers],
        "settings": {
            "seed": request.seed,
            "model": {"arch": run.arch, "image_size": geometry.crop,
                      "geometry": asdict(geometry) | {"source": settings.source("geometry")},
                      "precision": _precision(settings.amp, run.runtime),
                      **({"decode": settings.decode} if settings.decode != "full" else {})},
            "scorers": {s.name: _scorer_settings(s.name, settings) for s in run.scorers},
            "id_validation": validation.record if validation is not None else None,
            "resolved": settings.record(),
        },
        "metrics": metrics,
        "degenerate_scorers": [name for name, _, _ in degenerate],
    }


def _write(run: _Run, results: dict, id_set: ImageSet, ood_sets: list[ImageSet], scored_validation: Validation | None,
           scores: dict, id_outputs: dict, set_outputs: dict) -> None:
    request = run.request
    out = Path(request.out)
    if request.plots:  # the model's last pass first: Ctrl-C during it leaves OUT as it was
        from fgood_bench.evaluation import plots

        coarse = next((s for s in ood_sets if s.name != "holdout"), ood_sets[0])
        panels = plots.interpolation_confidences(run.model, id_set, coarse, run.runtime, run.settings,
                                                 batch_size=request.batch_size * 2, workers=request.workers)
    clear_outputs(out, ("results.json",))  # first (written last): its absence marks an incomplete evaluation
    clear_outputs(out, EVALUATE_FILES)
    written = [*ood_sets, *([replace(scored_validation.images, name="id_val")] if scored_validation else [])]
    _write_scores(out / "scores.parquet", id_set, written, scores, [s.name for s in run.scorers])
    if request.plots:
        checkpoint = request.checkpoint or run.payload.get("path") or "model"
        title = f"{run.benchmark.name} · {plots.model_label(results['model'], Path(checkpoint).name)}"
        confidence = {name: _msp(outputs) for name, outputs in (("id", id_outputs), *set_outputs.items())}
        figures = request.figures or FigureFormat()
        plots.plot_confidence(confidence, out / "confidence.png", title=f"{title}: MSP", figures=figures)
        plots.write_interpolation(panels, coarse.name, out / "interpolation.parquet")
        plots.plot_interpolation(panels, out / "interpolation.png", title=title, ood_name=coarse.name, figures=figures)
    write_reports(results, out)


def _precision(amp: bool, runtime) -> str:
    from fgood_bench.tools.precision import describe

    return describe(amp and runtime.cuda, runtime.cuda)


def _scorer_settings(name: str, settings: Settings) -> dict:
    """The parameters a scorer's numbers depend on (sources in docs/evaluation.md)."""
    if name == "odin":
        return {"temperature": settings.odin_temperature, "epsilon": settings.odin_epsilon,
                "epsilon_unit": "[0, 1] pixels: the step on the normalised input is divided by each channel's std"}
    if name == "energy":
        return {"temperature": settings.energy_temperature}
    if name == "mahalanobis":
        return {"feature_layers": settings.feature_layers, "fitted_on": "id_train", "aggregation": "sum"}
    if name == "gram":
        return {"feature_layers": settings.feature_layers, "orders": settings.gram_orders,
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
