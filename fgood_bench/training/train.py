"""``fgood-bench train``: the reference methods on a benchmark's ID training split.

Two recipes (paper.py, each value with its source): the fine-grained benchmarks'
(Appendix D.1: ResNet-50 from ImageNet weights, standard and rotation training for 60 epochs
(bird, car, aircraft) or 30 (flower, dog), batch 32 (rotation 16), OE, EnergyOE and MixupOE
fine-tuning the standard model (``--init``) for 10 epochs at lr 1e-3 with 32 outliers per step,
or training from scratch (``--from-scratch``) as standard training does) and INet-A/B's
(Appendix H.2: ResNet-18 from scratch for 90 epochs at lr 0.1, batch 256, 10 epochs of
fine-tuning at lr 1e-3 with 512 outliers per step for OE, EnergyOE, MixupOE and Rotation, the
shorter side resized to 256 then a 224 crop). Any value given explicitly replaces the recipe's.
OE beta and MixupOE beta_in-out are 5.0 (1.0 for dog); EnergyOE m_in -15, m_out -5, lambda 0.1;
MixupOE alpha 1.0 (Appendix D.3). For INet-A/B (H.2): OE beta 0.5; EnergyOE m_in -27, m_out -5,
lambda 0.05; MixupOE alpha 0.4, beta 5.0 with lam' = min(lam, 1 - lam).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from fgood_bench.datasets.base import check_inside_root
from fgood_bench.errors import FgoodError
from fgood_bench.manifests.image_sets import load_benchmark_manifest, outlier_set_root, without_validation
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.outputs import clear_outputs, run_folder
from fgood_bench.paper import BENCHMARKS, Recipe, paper_benchmark, paper_hyper_values, recipe_for
from fgood_bench.tools.loop import LoopOptions, Outliers, TrainConfig, TrainData, predict_logits, train_classifier
from fgood_bench.tools.models import build_model, load_checked_classifier, save_classifier
from fgood_bench.tools.runtime import seed_everything, setup_runtime
from fgood_bench.training.methods import METHODS, OUTLIER_METHODS, Hyper, MethodObjective, outliers_per_step

RUN_FILES = ("checkpoint.pt", "classifier.pt", "metrics.jsonl")  # what train writes into --out


@dataclass
class TrainRequest:
    method: str
    manifest: Path
    root: Path
    out: Path
    outliers: Path | None = None
    outlier_root: Path | None = None
    config: TrainConfig | None = None  # None: the benchmark's recipe with ``settings`` applied
    settings: dict = field(default_factory=dict)  # TrainConfig fields given by the user (None: the recipe's)
    epochs: int | None = None  # None: the recipe's
    hyper: dict = field(default_factory=dict)  # overrides of Hyper's fields
    init: Path | None = None  # the standard model to fine-tune
    from_scratch: bool = False
    outlier_batch: int | None = None  # None: the recipe's
    allow_pretrained_leak: bool = False  # ImageNet weights for an ImageNet-derived benchmark
    max_steps: int | None = None
    # Seed of the ID validation images ``evaluate`` carves from id_train (evaluation/evaluate.py,
    # ``id_validation``) to leave out of training, so that they stay unseen for selection on them
    # (``fgood-bench sweep``, Appendix D.3). None: train on all of id_train. A benchmark with an
    # id_val split needs nothing left out.
    hold_out_validation: int | None = None
    summary_accuracy: bool = True  # False where an evaluate follows (study, sweep): one inference pass fewer
    resume: bool = False
    overwrite: bool = False  # start over in an --out that holds an earlier run (--restart)
    progress: bool = True


def paper_hyper(benchmark: str, overrides: dict, method: str = "mixupoe") -> Hyper:
    """Appendix D.3's values for ``benchmark`` (beta 1.0 for dog), or Appendix H.2's for the
    coarse INet-A/B benchmarks (names starting with ``inet``), then the user's overrides
    (the values live in :mod:`fgood_bench.paper`)."""
    hyper = Hyper(**paper_hyper_values(benchmark, method))
    for key, value in overrides.items():
        if value is not None:
            setattr(hyper, key, value)
    return hyper


IMAGENET_DERIVED = ("imagenet",)  # dataset ids whose classes every torchvision weights file has seen


def check_weights_leak(weights: str | None, dataset: str, benchmark: str, allow: bool) -> None:
    """Refuse pretrained weights for a benchmark built from ImageNet: they were trained on its OOD classes."""
    if weights in (None, "none") or dataset not in IMAGENET_DERIVED or allow:
        return
    raise FgoodError(
        f"--weights {weights}: pretrained weights have seen {benchmark}'s OOD classes ({benchmark} is built from "
        f"ImageNet, which torchvision's weights are trained on); train with --weights none (Appendix H.2), or "
        f"force it with --allow-pretrained-leak"
    )


def recipe_config(recipe: Recipe, method: str, fine_tune: bool, settings: dict) -> TrainConfig:
    """The recipe's settings for ``method`` (fine-tuning or not), then the user's."""
    config = TrainConfig(
        arch=recipe.arch, weights=recipe.weights, lr=recipe.fine_tune_lr if fine_tune else recipe.lr,
        batch_size=recipe.rotation_batch_size if method == "rotation" else recipe.batch_size,
        image_size=recipe.image_size, resize_mode=recipe.resize_mode,
        weight_decay=recipe.fine_tune_weight_decay if fine_tune else recipe.weight_decay,
    )
    known = {f.name for f in fields(TrainConfig)}
    for key, value in settings.items():
        if key not in known:
            raise FgoodError(f"unknown training setting {key!r}")
        if value is not None:
            setattr(config, key, value)
    return config


def train(request: TrainRequest) -> Path | None:
    """Train; returns the path of ``classifier.pt`` (None on non-zero torchrun ranks)."""
    if request.method not in METHODS:
        raise FgoodError(f"unknown method {request.method!r}; choose from {', '.join(METHODS)}")
    benchmark = load_benchmark_manifest(request.manifest, "train")
    classes = benchmark.id_class_names
    rows = benchmark.split("id_train")
    if not rows.paths:
        raise FgoodError(f"{benchmark.path}: the id_train split is empty; there is nothing to train on")
    root = benchmark.dataset_root(request.root)
    check_inside_root(root, rows.paths)
    rows, held_out = without_validation(benchmark, rows, root, request.hold_out_validation)
    paper_name = paper_benchmark(benchmark.name, benchmark.dataset) or benchmark.name
    hyper = paper_hyper(paper_name, request.hyper, request.method)
    hyper.check()
    recipe = recipe_for(paper_name)
    fine_tune = request.method in recipe.fine_tuned and not request.from_scratch
    if request.init is not None and not fine_tune:
        raise FgoodError(f"--init: {request.method} {'trains from scratch' if request.from_scratch else 'is not fine-tuned'} "
                         f"in the {recipe.name} recipe; drop --init")
    config = request.config or recipe_config(recipe, request.method, fine_tune, request.settings)
    config = TrainConfig(**asdict(config))
    outliers = _outliers(request, benchmark, recipe, hyper, config) if request.method in OUTLIER_METHODS else None
    if outliers is None and request.outliers is not None:
        raise FgoodError(f"method {request.method} uses no outliers; drop --outliers")
    preset = BENCHMARKS.get(paper_name)
    standard_epochs = recipe.epochs or (preset.epochs if preset else config.epochs)
    config.epochs = request.epochs or (recipe.fine_tune_epochs if fine_tune else standard_epochs)
    if not fine_tune:
        check_weights_leak(config.weights, benchmark.dataset, benchmark.name, request.allow_pretrained_leak)
    if fine_tune and request.init is None:
        raise FgoodError(f"{request.method} fine-tunes the standard model: give --init CHECKPOINT, or --from-scratch")
    out = Path(request.out)
    with run_folder(out, "train", reuse=request.resume or request.overwrite, owned=RUN_FILES, hint=_rerun_hint(out)):
        return _train(request, benchmark, classes, rows, root, hyper, outliers, fine_tune, config, out, recipe, held_out)


def _rerun_hint(out: Path) -> str:
    if (out / "classifier.pt").is_file():
        return "the run finished: pass --overwrite (or --restart) to train again from the start"
    return "pass --resume to continue it, or --restart to start over"


def _train(request: TrainRequest, benchmark, classes, rows, root, hyper, outliers, fine_tune, config, out,
           recipe: Recipe, held_out: dict | None) -> Path | None:
    seed_everything(config.seed)
    if fine_tune:
        model, payload, _ = load_checked_classifier(request.init, classes, f"{benchmark.name}'s ID classes", config.arch,
                                                    config.image_size, strict_arch=False)
        if hasattr(model, "rotation_head") and request.method != "rotation":
            raise FgoodError(f"{request.init}: a rotation model (it has a rotation head); {request.method} fine-tunes "
                             "the standard model: give a --method standard checkpoint")
        if held_out is not None and (payload.get("held_out_id_validation") or {}).get("paths_sha256") != held_out["paths_sha256"]:
            raise FgoodError(f"{request.init}: was trained on the ID validation images this training leaves out")
        config.arch = payload.get("arch", config.arch)
    else:
        model = build_model(config.arch, len(classes), config.weights, config.image_size)
    runtime = setup_runtime(config.device)
    log = out / "metrics.jsonl"
    if runtime.is_main and not request.resume:
        clear_outputs(out, RUN_FILES)
    try:
        model = train_classifier(model, TrainData(root, rows.paths, rows.labels), config, runtime, out,
                                 objective=MethodObjective(request.method, hyper, len(classes)), outliers=outliers,
                                 options=LoopOptions(resume=request.resume, progress=request.progress,
                                                     max_steps=request.max_steps, log=log))
    except BaseException:  # Ctrl-C or a failure before the first checkpoint: nothing to continue from, so
        # leave no half run behind (its log alone would make the rerun ask for --resume or --restart)
        if runtime.is_main and not request.resume and not (out / "checkpoint.pt").exists():
            log.unlink(missing_ok=True)
        raise
    accuracy = _id_accuracy(model, benchmark, root, config, runtime, request.progress) if request.summary_accuracy else None
    if not runtime.is_main:
        return None
    save_classifier(out / "classifier.pt", model, config.arch, classes, extra={
        "method": request.method, "benchmark": benchmark.name, "hyper": asdict(hyper), "epochs": config.epochs,
        "fine_tuned_from": str(request.init) if fine_tune else None, "image_size": config.image_size,
        "resize_mode": config.resize_mode, "geometry": asdict(config.geometry), "recipe": recipe.name,
        "training": config.record(),
        "outliers_per_step": outliers.batch_size if outliers else 0,
        "id_accuracy": accuracy,
        "held_out_id_validation": held_out,
    })
    return out / "classifier.pt"


def _id_accuracy(model, benchmark: Manifest, root: Path, config: TrainConfig, runtime, progress: bool) -> dict | None:
    """Top-1 accuracy of the trained model on id_val (where the benchmark has one) or id_test,
    for the summary and the checkpoint's record (every rank takes part in the sharded pass)."""
    split = "id_val" if "id_val" in benchmark.split_names else "id_test"
    rows = benchmark.split(split)
    logits = predict_logits(model, root, rows.paths, config, runtime, progress=progress)
    if logits is None or not rows.paths:
        return None
    correct = logits.argmax(axis=1) == np.asarray(rows.labels)
    return {"split": split, "images": len(rows.paths), "accuracy": float(correct.mean())}


def _outliers(request: TrainRequest, benchmark: Manifest, recipe: Recipe, hyper: Hyper, config: TrainConfig) -> Outliers:
    if request.outliers is None:
        raise FgoodError(f"method {request.method} needs --outliers (a filter-outliers or build-ood-set manifest)")
    manifest = Manifest.load(request.outliers)
    if manifest.kind == "benchmark":
        raise FgoodError(f"{manifest.path}: a benchmark manifest; --outliers takes a filter-outliers or build-ood-set manifest")
    split = "train" if "train" in manifest.split_names else "ood_test"
    rows = manifest.split(split)
    if not rows.paths:
        raise FgoodError(f"{manifest.path}: the outlier set is empty")
    if manifest.dataset == benchmark.dataset and manifest.dataset_options == benchmark.dataset_options:
        benchmark_paths = {p for name in benchmark.split_names for p in benchmark.split(name).paths}
        overlap = benchmark_paths.intersection(rows.paths)
        if overlap:
            raise FgoodError(f"{manifest.path}: the outlier set contains {len(overlap)} images of the benchmark, "
                             f"e.g. {sorted(overlap)[0]}")
    root = outlier_set_root(manifest, request.outlier_root, request.root, benchmark.dataset)
    check_inside_root(root, rows.paths)
    wanted = request.outlier_batch or recipe.outlier_batch_size
    return Outliers(root, rows.paths, outliers_per_step(request.method, hyper, config.batch_size, wanted))
