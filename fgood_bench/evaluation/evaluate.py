"""``fgood-bench evaluate``: score a benchmark's ID test images against its holdout and coarse OOD sets.

One forward pass per image feeds every scorer. The results state the metric convention and the
base rate they were computed at; per-image scores are kept for reuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from torch import nn

from fgood_bench import __version__
from fgood_bench.errors import FgoodError
from fgood_bench.evaluation.forward import forward_outputs
from fgood_bench.evaluation.report import write_reports
from fgood_bench.evaluation.scorers import Scorer, make_scorers
from fgood_bench.manifests.files import ensure_output_folder, sha256_file
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.metrics import CONVENTION, METRICS, ood_metrics, ood_metrics_at_base_rate
from fgood_bench.training.engine import TrainConfig, seed_everything, setup_runtime
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
    config: TrainConfig = field(default_factory=lambda: TrainConfig(weights=None))
    base_rate: float | None = None
    repeats: int = 10
    seed: int = 0
    odin_epsilon: float = 0.0
    gram_orders: int = 10
    plots: bool = False
    progress: bool = True
    transform: Callable | None = None  # PIL image -> normalised input tensor; None: the paper's test transform


@dataclass
class ImageSet:
    name: str
    root: Path
    paths: list[str]
    labels: list[int]
    manifest: Manifest


def resolve_ood_sets(request: EvaluateRequest, benchmark: Manifest, id_set: ImageSet) -> list[ImageSet]:
    sets = []
    for spec in request.ood:
        if spec == "holdout":
            name, manifest, root = "holdout", benchmark, id_set.root
        else:
            name, _, path = spec.partition("=")
            if not name or not path:
                raise FgoodError(f"--ood {spec!r}: expected 'holdout' or NAME=MANIFEST")
            manifest = Manifest.load(path)
            root = manifest.dataset_root(request.ood_roots.get(name, request.root))
        if "ood_test" not in manifest.split_names:
            raise FgoodError(f"{manifest.path}: no ood_test split to evaluate against")
        rows = manifest.split("ood_test")
        if not rows.paths:
            raise FgoodError(f"{manifest.path}: the OOD set {name!r} is empty")
        if manifest.dataset == benchmark.dataset and manifest.dataset_options == benchmark.dataset_options:
            overlap = set(rows.paths) & set(id_set.paths)
            if overlap:
                raise FgoodError(f"{manifest.path}: OOD set {name!r} shares {len(overlap)} images with the ID test split, "
                                 f"e.g. {sorted(overlap)[0]}")
        if any(s.name == name for s in sets):
            raise FgoodError(f"--ood {name!r} given twice")
        sets.append(ImageSet(name, root, rows.paths, rows.labels, manifest))
    return sets


def evaluate(request: EvaluateRequest, model: nn.Module | None = None, scorers: list[Scorer] | None = None) -> dict:
    """Run the evaluation; writes the reports into ``request.out`` (unless None) and returns the results.

    ``model`` / ``scorers``: already built (the Python API, ``fgood_bench.evaluate_model``); by default the
    checkpoint's classifier and ``request.scorers``."""
    benchmark = Manifest.load(request.manifest)
    if benchmark.kind != "benchmark":
        raise FgoodError(f"{benchmark.path}: a {benchmark.kind} manifest; evaluate needs a benchmark (build-splits)")
    classifier_scorers = scorers is None  # built-in scorers read a K-way classifier's outputs
    scorers = make_scorers(request.scorers) if scorers is None else scorers
    if request.out is not None:
        ensure_output_folder(Path(request.out))
    id_root = benchmark.dataset_root(request.root)
    id_rows = benchmark.split("id_test")
    id_set = ImageSet("id", id_root, id_rows.paths, id_rows.labels, benchmark)
    ood_sets = resolve_ood_sets(request, benchmark, id_set)

    classes = benchmark.id_class_names
    config = request.config
    if model is None:
        model, payload = load_classifier(request.checkpoint, len(classes), config.arch, config.image_size)
        if "classes" in payload and list(payload["classes"]) != classes:
            raise FgoodError(f"{request.checkpoint}: trained on other classes than the benchmark's ID classes")
    runtime = setup_runtime(config.device)
    if runtime.world > 1:
        raise FgoodError("evaluate runs in one process; launch it without torchrun")
    seed_everything(request.seed)
    needs = set().union(*(s.needs for s in scorers))

    def outputs_of(image_set: ImageSet, desc: str) -> dict:
        return forward_outputs(model, image_set.root, image_set.paths, config, runtime, needs, gram_orders=request.gram_orders,
                               odin_epsilon=request.odin_epsilon if "odin" in request.scorers else 0.0,
                               progress=request.progress, desc=desc, transform=request.transform)

    if needs & {"pooled", "gram"}:
        train_rows = benchmark.split("id_train")
        train = outputs_of(ImageSet("id_train", id_root, train_rows.paths, train_rows.labels, benchmark), "fitting (id_train)")
        for scorer in scorers:
            scorer.fit(train, np.asarray(train_rows.labels))
    id_outputs = outputs_of(id_set, "scoring id_test")
    set_outputs = {s.name: outputs_of(s, f"scoring {s.name}") for s in ood_sets}

    scores = {"id": _scores(scorers, id_outputs)}
    scores.update({name: _scores(scorers, outputs) for name, outputs in set_outputs.items()})
    is_classifier = id_outputs["logits"].shape[1] == len(classes)  # not so for a score function's (N, 1) outputs
    if classifier_scorers and not is_classifier:
        raise FgoodError(f"the model gives {id_outputs['logits'].shape[1]} outputs per image, the benchmark has {len(classes)} ID classes")
    accuracy = float(np.mean(id_outputs["logits"].argmax(axis=1) == np.asarray(id_rows.labels))) if is_classifier else None
    metrics = {}
    for image_set in ood_sets:
        metrics[image_set.name] = {}
        for scorer in scorers:
            id_scores, ood_scores = scores["id"][scorer.name], scores[image_set.name][scorer.name]
            if request.base_rate:
                metrics[image_set.name][scorer.name] = ood_metrics_at_base_rate(
                    id_scores, ood_scores, request.base_rate, request.repeats, request.seed)
            else:
                metrics[image_set.name][scorer.name] = ood_metrics(id_scores, ood_scores)

    results = {
        "toolkit": f"fgood-bench {__version__}",
        "convention": CONVENTION,
        "base_rate": ({"id_to_ood": request.base_rate, "repeats": request.repeats, "seed": request.seed}
                      if request.base_rate else "none: all images of each set"),
        "metrics_reported": list(METRICS),
        "benchmark": {"name": benchmark.name, "manifest_sha256": sha256_file(benchmark.path)},
        "checkpoint_sha256": sha256_file(Path(request.checkpoint)) if request.checkpoint else None,
        **({} if request.checkpoint else {"model": getattr(model, "description", type(model).__name__)}),
        "id_accuracy": accuracy,
        "counts": {"id_test": len(id_set.paths), **{s.name: len(s.paths) for s in ood_sets}},
        "ood_sets": {s.name: {"dataset": s.manifest.dataset, "manifest_sha256": sha256_file(s.manifest.path)} for s in ood_sets},
        "scorers": [s.name for s in scorers],
        "settings": {"odin_temperature": 1000.0, "odin_epsilon": request.odin_epsilon, "energy_temperature": 1.0,
                     "gram_orders": request.gram_orders, "image_size": config.image_size},
        "metrics": metrics,
    }
    if request.out is None:
        return results
    out = Path(request.out)
    write_reports(results, out)
    _write_scores(out / "scores.parquet", id_set, ood_sets, scores, [s.name for s in scorers])
    if request.plots:
        from fgood_bench.evaluation.plots import plot_confidence, plot_interpolation

        confidence = {name: _msp(outputs) for name, outputs in (("id", id_outputs), *set_outputs.items())}
        plot_confidence(confidence, out / "confidence.png", title=f"{benchmark.name}: MSP")
        coarse = next((s for s in ood_sets if s.name != "holdout"), ood_sets[0])
        plot_interpolation(model, id_set, coarse, config, runtime, out / "interpolation.png", title=benchmark.name)
    return results


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
    pq.write_table(pa.table(columns), path)
