"""``fgood-bench train``: the reference methods on a benchmark's ID training split.

Presets follow Appendix D: standard (and rotation) training for 60 epochs (bird, car, aircraft)
or 30 (flower, dog) from ImageNet weights; OE, EnergyOE and MixupOE fine-tune the standard model
(``--init``) for 10 epochs at lr 1e-3 with 32 outliers per step, or train from scratch
(``--from-scratch``) as standard training does. OE beta and MixupOE beta_in-out are 5.0 (1.0
for dog); EnergyOE m_in -15, m_out -5, lambda 0.1; MixupOE alpha 1.0. For the INet-A/B
benchmarks (Appendix H.2): OE beta 0.5; EnergyOE m_in -27, m_out -5, lambda 0.05; MixupOE
alpha 0.4, beta 5.0 with lam' = min(lam, 1 - lam); their lr, epochs and batch sizes are options.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fgood_bench.errors import FgoodError
from fgood_bench.manifests.files import ensure_output_folder
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.ranking.benchmarks import BENCHMARKS
from fgood_bench.training.engine import (
    Outliers, TrainConfig, predict_logits, seed_everything, setup_runtime, train_classifier,
)
from fgood_bench.training.methods import METHODS, Hyper
from fgood_bench.training.models import build_model, load_classifier, save_classifier

OUTLIER_METHODS = ("oe", "energy-oe", "mixupoe")
FINE_TUNE_EPOCHS = 10


@dataclass
class TrainRequest:
    method: str
    manifest: Path
    root: Path
    out: Path
    outliers: Path | None = None
    outlier_root: Path | None = None
    config: TrainConfig = field(default_factory=TrainConfig)
    epochs: int | None = None  # None: the preset
    hyper: dict = field(default_factory=dict)  # overrides of Hyper's fields
    init: Path | None = None  # the standard model to fine-tune
    from_scratch: bool = False
    outlier_batch: int = 32
    max_steps: int | None = None
    resume: bool = False
    progress: bool = True


def paper_hyper(benchmark: str, overrides: dict, method: str = "mixupoe") -> Hyper:
    """Appendix D.3's values for ``benchmark`` (beta 1.0 for dog), or Appendix H.2's for the
    coarse INet-A/B benchmarks (names starting with ``inet``), then the user's overrides."""
    if benchmark.lower().startswith("inet"):
        hyper = Hyper(beta=0.5 if method == "oe" else 5.0, alpha=0.4, coarse=True, m_in=-27.0, m_out=-5.0, energy_weight=0.05)
    else:
        hyper = Hyper(beta=1.0 if benchmark == "dog" else 5.0)
    for key, value in overrides.items():
        if value is not None:
            setattr(hyper, key, value)
    return hyper


def train(request: TrainRequest) -> Path | None:
    """Train; returns the path of ``classifier.pt`` (None on non-zero torchrun ranks)."""
    if request.method not in METHODS:
        raise FgoodError(f"unknown method {request.method!r}; choose from {', '.join(METHODS)}")
    benchmark = Manifest.load(request.manifest)
    if benchmark.kind != "benchmark":
        raise FgoodError(f"{benchmark.path}: a {benchmark.kind} manifest; train needs a benchmark (build-splits)")
    classes = benchmark.id_class_names
    rows = benchmark.split("id_train")
    root = benchmark.dataset_root(request.root)
    hyper = paper_hyper(benchmark.name, request.hyper, request.method)
    hyper.check()
    outliers = _outliers(request, benchmark) if request.method in OUTLIER_METHODS else None
    if outliers is None and request.outliers is not None:
        raise FgoodError(f"method {request.method} uses no outliers; drop --outliers")
    fine_tune = request.method in OUTLIER_METHODS and not request.from_scratch
    preset = BENCHMARKS.get(benchmark.name)
    config = TrainConfig(**asdict(request.config))
    config.epochs = request.epochs or (FINE_TUNE_EPOCHS if fine_tune else preset.epochs if preset else config.epochs)
    ensure_output_folder(Path(request.out))
    seed_everything(config.seed)
    if fine_tune:
        if request.init is None:
            raise FgoodError(f"{request.method} fine-tunes the standard model: give --init CHECKPOINT, or --from-scratch")
        model, payload = load_classifier(request.init, len(classes), config.arch, config.image_size)
        if "classes" in payload and list(payload["classes"]) != classes:
            raise FgoodError(f"{request.init}: trained on other classes than {benchmark.name}'s ID classes")
        config.arch = payload.get("arch", config.arch)
    else:
        model = build_model(config.arch, len(classes), config.weights, config.image_size)
    runtime = setup_runtime(config.device)
    out = Path(request.out)
    log = out / "metrics.jsonl"
    if runtime.is_main and not request.resume:
        log.unlink(missing_ok=True)
    model = train_classifier(model, root, rows.paths, rows.labels, config, runtime, out, resume=request.resume,
                             progress=request.progress, method=request.method, hyper=hyper, outliers=outliers,
                             max_steps=request.max_steps, log=log)
    accuracy = _id_accuracy(model, benchmark, root, config, runtime, request.progress)
    if not runtime.is_main:
        return None
    save_classifier(out / "classifier.pt", model, config.arch, classes, extra={
        "method": request.method, "benchmark": benchmark.name, "hyper": asdict(hyper), "epochs": config.epochs,
        "fine_tuned_from": str(request.init) if fine_tune else None, "image_size": config.image_size,
        "id_accuracy": accuracy,
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


def _outliers(request: TrainRequest, benchmark: Manifest) -> Outliers:
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
    root = manifest.dataset_root(request.outlier_root or request.root)
    return Outliers(root, rows.paths, request.outlier_batch)
