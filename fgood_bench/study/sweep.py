"""``fgood-bench sweep``: choose a method's hyperparameters on validation outliers (paper section 4,
"Hyperparameter Tuning"; Appendix D.3 and its Table 4).

Each point of a grid (e.g. MixupOE's alpha_in-out x beta_in-out) is trained with ``train`` and
scored with ``evaluate`` on the synthetic validation outliers of Appendix D.3 (``build-ood-set
synthetic-val``) against held-out ID validation images, never on a test OOD set. Where the
benchmark has no id_val split, those images are the ones ``evaluate`` carves from id_train with
the sweep's seed, and every model of the sweep is trained without them (``TrainRequest.
hold_out_validation``), the standard model that fine-tuning starts from included: the accuracy and
the ID scores the selection reads are those of unseen images.

Validation metrics follow the OE code's validation mode (hendrycks/outlier-exposure
``CIFAR/test.py --validate``): each kind of validation outlier is scored on its own against the
ID validation images and the metrics are averaged over the kinds. The selection rule is
:func:`select_point`; test OOD sets (``--evaluate-test``) are evaluated after it, for analysis,
and kept apart in every output.

A point is done when its ``result.json`` exists: a killed sweep run again with the same
arguments skips the points done and resumes a point's training from its last epoch. Settings
that change what a point is (training, outliers, validation set, scorer, seed) are pinned in
``sweep.json``; the grid itself may grow (new points are trained, finished ones reused), and the
selection options may change freely (the selection is recomputed from the points' results).

``seeds`` > 1 trains every grid point (and the standard model the sweep trains) once per training
seed, seed .. seed + seeds - 1 (Table 4 reports the mean +- std over 5 runs): the first seed in the
point's folder as with one seed, each other in ``seed-S/`` inside it. Every run is validated on
the same ID validation images (carved with ``seed``) and validation outliers; a point's row holds
the mean over its runs (which the selection and the reports read), the sample standard deviation
(``std``) and every run (``runs``). The number of seeds is not pinned: a rerun with more seeds
trains the missing runs only.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fgood_bench import __version__
from fgood_bench.errors import FgoodError
from fgood_bench.interrupt import forget, keep
from fgood_bench.evaluation import evaluate as evaluation  # evaluation.evaluate is looked up at call time
from fgood_bench.evaluation.evaluate import EvaluateRequest
from fgood_bench.evaluation.paper import PAPER_METHOD
from fgood_bench.evaluation.protocol import describe
from fgood_bench.evaluation.report import metric_value
from fgood_bench.evaluation.scorers import check_standard_model_scorer, make_scorers
from fgood_bench.manifests.image_sets import (
    check_set_name, id_validation, is_validation_outliers, load_benchmark_manifest,
)
from fgood_bench.manifests.manifest import Manifest, named_manifest
from fgood_bench.manifests.ood_set import build_synthetic_val_set
from fgood_bench.metrics import METRICS, ood_metrics, ood_metrics_at_base_rate
from fgood_bench.outputs import clear_outputs, json_bytes, pin_settings, run_folder, sha256_file, write_files
from fgood_bench.paper import PAPER_BASE_RATE, PAPER_REPEATS, paper_benchmark, recipe_for
from fgood_bench.progress import Stages
from fgood_bench.study.sweep_report import (
    DEFAULT_TOLERANCE, METRIC_LABELS, SELECT_METRICS, SWEEP_KEYS, VAL, grid_csv, heatmaps, point_name, sweep_markdown,
)
from fgood_bench.tools.models import load_classifier
from fgood_bench.tools.settings import Requested
from fgood_bench.tools.figures import FORMATS, FigureFormat
from fgood_bench.training import train as training  # training.train is looked up at call time
from fgood_bench.training.methods import OUTLIER_METHODS
from fgood_bench.training.train import TrainRequest, paper_hyper


VAL_OOD_FOLDER = "val-ood"  # OUT/val-ood/synthetic-val when the sweep builds them


@dataclass
class SweepRequest:
    method: str
    grid: list[str]  # "KEY=V1,V2,..." as given to --grid
    manifest: Path
    root: Path
    out: Path
    outliers: Path | None = None
    outlier_root: Path | None = None
    outlier_batch: int | None = None
    val_ood: Path | None = None  # a synthetic-val manifest; None: built in OUT/val-ood from the benchmark
    val_ood_size: int = 100  # images per kind when built (build-ood-set synthetic-val's default)
    settings: dict = field(default_factory=dict)  # TrainConfig fields given by the user (None: the recipe's)
    epochs: int | None = None  # of every grid point (None: the recipe's)
    standard_epochs: int | None = None  # of the standard model the sweep trains to fine-tune from (None: the recipe's)
    init: Path | None = None  # a standard model trained without the ID validation images (an earlier sweep's)
    from_scratch: bool = False
    scorer: str | None = None  # None: the method's scorer in the paper (evaluation/paper.py)
    select_metric: str = "aupr"
    tolerance: float = DEFAULT_TOLERANCE  # percentage points of ID validation accuracy
    evaluate_test: bool = False
    test_ood: list[str] = field(default_factory=list)  # "holdout" or "NAME=MANIFEST" (default holdout)
    test_ood_roots: dict[str, Path] = field(default_factory=dict)
    protocol: str | None = None  # of the test evaluations only
    progress: bool = True
    seeds: int = 1  # training runs per grid point: seeds seed .. seed + seeds - 1 (mean +- std)
    figures: FigureFormat | None = None  # the heat maps' formats and dpi (None: PNG at 120 dpi); not pinned


def parse_grid(method: str, specs: list[str]) -> list[tuple[str, list[float]]]:
    """``KEY=V1,V2`` options as (key, values), keys checked against the method's hyperparameters."""
    if method not in SWEEP_KEYS:
        raise FgoodError(f"method {method} has no hyperparameters to sweep; sweep takes {', '.join(SWEEP_KEYS)}")
    valid = SWEEP_KEYS[method]
    grid = []
    for spec in specs:
        key, _, text = spec.partition("=")
        key = key.strip().replace("_", "-")
        if key not in valid:
            raise FgoodError(f"--grid {spec!r}: {method} has no hyperparameter {key!r}; its keys are {', '.join(valid)}")
        if any(key == k for k, _ in grid):
            raise FgoodError(f"--grid {key}: given twice; list its values once, comma-separated")
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            raise FgoodError(f"--grid {spec!r}: expected {key}=NUMBER[,NUMBER...]") from None
        if not all(np.isfinite(values)):
            raise FgoodError(f"--grid {spec!r}: values must be finite numbers")
        if len(set(values)) != len(values):
            raise FgoodError(f"--grid {spec!r}: a value is listed twice")
        grid.append((key, values))
    if not grid:
        raise FgoodError(f"give at least one --grid KEY=V1,V2,... ({method}'s keys: {', '.join(valid)})")
    return grid


def grid_points(grid: list[tuple[str, list[float]]]) -> list[dict[str, float]]:
    """Every combination, in grid order: the first key varies slowest."""
    keys = [k for k, _ in grid]
    return [dict(zip(keys, values)) for values in itertools.product(*(v for _, v in grid))]


def hyper_overrides(point: dict[str, float]) -> dict:
    return {key.replace("-", "_"): value for key, value in point.items()}


def default_scorer(method: str) -> str:
    """The scorer the paper reads each method with: MSP for OE and MixupOE, energy for EnergyOE."""
    return next(scorer for (trained, scorer), _ in PAPER_METHOD.items() if trained == method)


def rule_text(metric: str, tolerance: float, reference: str = "the best grid point's") -> str:
    better = "lowest" if metric == "fpr95" else "highest"
    return (f"among the grid points whose ID validation accuracy is at most {tolerance:g} percentage "
            f"point{'' if tolerance == 1 else 's'} below {reference}, the one with the {better} "
            f"{METRIC_LABELS[metric]} on the validation outliers (the mean over "
            f"their kinds); ties go to the higher ID validation accuracy, then to the earlier point in grid order")


STANDARD_REFERENCE = "the Standard model's (the model the points fine-tune)"


def select_point(rows: list[dict], metric: str, tolerance: float, standard: dict | None = None) -> dict:
    """The paper's rule (section 4, Appendix D.3): OOD detection "maximized on the validation
    outliers while the ID classification accuracy is minimally affected", made exact.

    ``rows`` (grid order) each hold ``name`` and ``validation`` with ``accuracy`` and ``metric``
    (fractions). "Minimally affected" is measured against ``standard``, the Standard model's row,
    where the sweep has one (the points fine-tune it); else against the best point. Eligible:
    accuracy >= reference accuracy - ``tolerance`` percentage points; when no point is, the most
    accurate point alone. Returns the chosen row's name, the eligible names, the reference accuracy
    and the rule in words.
    """
    if metric not in SELECT_METRICS:
        raise FgoodError(f"--select-metric {metric}: choose from {', '.join(SELECT_METRICS)}")
    if not rows:
        raise FgoodError("no grid point to select from")
    best_accuracy = max(r["validation"]["accuracy"] for r in rows)
    reference = standard["validation"]["accuracy"] if standard else best_accuracy
    # in percentage points, with a margin far below one image's share for float rounding of k/n
    eligible = [r for r in rows if 100 * r["validation"]["accuracy"] >= 100 * reference - tolerance - 1e-9]
    if not eligible:  # every point costs more than the tolerance: keep the least affected
        eligible = [r for r in rows if r["validation"]["accuracy"] == best_accuracy]
    sign = -1.0 if metric == "fpr95" else 1.0
    order = {r["name"]: i for i, r in enumerate(rows)}
    chosen = max(eligible, key=lambda r: (sign * r["validation"][metric], r["validation"]["accuracy"], -order[r["name"]]))
    words = rule_text(metric, tolerance, STANDARD_REFERENCE if standard else "the best grid point's")
    if standard:
        words += "; if none is, the most accurate point"
    return {"selected": chosen["name"], "eligible": [r["name"] for r in eligible], "reference_accuracy": reference,
            "reference": "standard" if standard else "best point", "rule": words, "metric": metric,
            "tolerance_points": tolerance}


# ----------------------------------------------------------------------------------- the run
def run_sweep(request: SweepRequest) -> dict:
    """Train and evaluate every grid point not yet done, select, write the reports; returns the summary."""
    grid = parse_grid(request.method, request.grid)
    points = grid_points(grid)
    benchmark = load_benchmark_manifest(request.manifest, "sweep")
    if request.method in OUTLIER_METHODS and request.outliers is None:  # before the standard model's training, not after
        raise FgoodError(f"method {request.method} needs --outliers (a filter-outliers or build-ood-set manifest)")

    paper_name = paper_benchmark(benchmark.name, benchmark.dataset) or benchmark.name
    for point in points:  # a bad value fails now, not after hours of training
        paper_hyper(paper_name, hyper_overrides(point), request.method).check()
    if request.select_metric not in SELECT_METRICS:
        raise FgoodError(f"--select-metric {request.select_metric}: choose from {', '.join(SELECT_METRICS)}")
    if request.tolerance < 0:
        raise FgoodError(f"--accuracy-tolerance {request.tolerance:g}: must be 0 or more (percentage points)")
    scorer = request.scorer or default_scorer(request.method)
    if request.method == "rotation":  # its models have the rotation head the rotation scorer reads
        make_scorers([scorer])
    else:
        check_standard_model_scorer(scorer)
    if (request.test_ood or request.protocol) and not request.evaluate_test:
        raise FgoodError("--ood and --protocol choose the test evaluation: add --evaluate-test (they never select)")
    seed = int(request.settings.get("seed") or 0)
    if seed < 0:
        raise FgoodError(f"--seed {seed}: must be 0 or more")
    if request.seeds < 1:
        raise FgoodError(f"--seeds {request.seeds}: must be 1 or more")
    seeds = list(range(seed, seed + request.seeds))
    recipe = recipe_for(paper_name)
    fine_tune = request.method in recipe.fine_tuned and not request.from_scratch
    if request.init is not None and not fine_tune:
        raise FgoodError(f"--init: {request.method} does not fine-tune here; drop --init")
    if request.init is not None:
        check_init(request.init, benchmark, seed)
    val_set = _given_val_set(request.val_ood, benchmark) if request.val_ood else None
    test_specs = _test_specs(request)
    out = Path(request.out)
    with run_folder(out, "sweep", reuse=True):  # resumable: sweep.json pins the settings
        settings = _settings(request, benchmark, scorer, seed, val_set, fine_tune, recipe)
        pin_settings(out / "sweep.json", settings, "sweep")
        if val_set is None:
            image_size = request.settings.get("image_size") or recipe.image_size
            val_set = _built_val_set(request, out, benchmark, seed, image_size)
        runner = _Runner(request, out, benchmark, scorer, seed, val_set, test_specs)
        baseline, init = None, request.init
        stages = Stages("grid point", len(points) + (1 if fine_tune else 0), enabled=request.progress)
        inits = {s: None for s in seeds}  # the model each seed's points fine-tune
        if fine_tune:  # the standard model fine-tuning starts from: --init, or trained here without the ID validation images
            given = init is not None
            with stages.stage(0, "the standard model"):
                if given:  # one model, evaluated once
                    inits = {s: init for s in seeds}
                    baseline = runner.point(out / "baseline", "baseline", {}, lambda: init)
                else:
                    inits = {s: seed_folder(out / "baseline", s, seed) / "train" / "classifier.pt" for s in seeds}
                    baseline = runner.runs(out / "baseline", "baseline", {}, seeds, lambda run, s: runner.train(
                        run / "train", "standard", {}, None, request.standard_epochs, s))
        rows = []
        for i, point in enumerate(points):
            folder = out / "points" / point_name(point)
            with stages.stage(i + (1 if fine_tune else 0), point_name(point)):
                rows.append(runner.runs(folder, point_name(point), point, seeds, lambda run, s, point=point: runner.train(
                    run / "train", request.method, hyper_overrides(point), inits[s], request.epochs, s)))
            forget()  # the finished point's training is part of it
            keep(out / "points", f"the finished grid points ({i + 1} of {len(points)}) are kept in {out / 'points'}")
        selection = select_point(rows, request.select_metric, request.tolerance, standard=baseline)
        summary = _summary(request, settings, grid, rows, baseline, selection)
        if len(seeds) > 1:  # the selected point's spread and runs (one seed: the outputs as they were)
            chosen = next(r for r in rows if r["name"] == selection["selected"])
            summary["seeds"] = seeds
            summary["selection"]["std"] = chosen["std"]
            summary["selection"]["runs"] = [{k: r[k] for k in ("seed", "checkpoint", "checkpoint_sha256")} for r in chosen["runs"]]
        _write(out, summary, request.figures)
        return summary


def seed_folder(folder: Path, run_seed: int, seed: int) -> Path:
    """Where a point's run with training seed ``run_seed`` lives: the point's folder for the
    sweep's ``seed`` (as with one seed), ``seed-S`` inside it for the others."""
    return folder if run_seed == seed else folder / f"seed-{run_seed}"


def mean_of_runs(runs: list[dict], seeds: list[int]) -> dict:
    """A point's row over its runs (one per training seed): the validation (and test) values are
    the means, ``std`` their sample standard deviations (ddof 1), ``runs`` every run's row; the
    checkpoint named is the first seed's."""
    first = runs[0]
    columns = ("accuracy", *SELECT_METRICS)

    def mean(values):
        return float(np.mean(values))

    def std(values):
        return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    per_kind = {kind: {key: mean([r["validation"]["per_kind"][kind][key] for r in runs]) if isinstance(value, float) else value
                       for key, value in metrics.items()}
                for kind, metrics in first["validation"]["per_kind"].items()}
    validation = {**{m: mean([r["validation"][m] for r in runs]) for m in columns}, "per_kind": per_kind,
                  "id_validation": first["validation"]["id_validation"], "counts": first["validation"]["counts"]}
    row = {"name": first["name"], "point": first["point"], "checkpoint": first["checkpoint"],
           "checkpoint_sha256": first["checkpoint_sha256"], "validation": validation,
           "std": {m: std([r["validation"][m] for r in runs]) for m in columns},
           "seeds": seeds, "runs": [{"seed": s, **r} for s, r in zip(seeds, runs)]}
    if "test" in first:
        sets = list(first["test"]["metrics"])

        def over_runs(reduce):
            return {"id_accuracy": reduce([r["test"]["id_accuracy"] for r in runs]),
                    "metrics": {n: {m: reduce([r["test"]["metrics"][n][m] for r in runs]) for m in SELECT_METRICS} for n in sets}}

        row["test"] = {**{k: first["test"][k] for k in ("spec", "protocol", "protocol_text")}, **over_runs(mean),
                       "std": over_runs(std)}
    return row


def kind_metrics(id_scores: np.ndarray, kind_scores: np.ndarray, seed: int) -> dict:
    """One kind of validation outliers against the ID validation images at the paper's base rate."""
    if id_scores.size < PAPER_BASE_RATE:
        return {**ood_metrics(id_scores, kind_scores), "base_rate": "none: too few ID validation images"}
    at = ood_metrics_at_base_rate(id_scores, kind_scores, PAPER_BASE_RATE, PAPER_REPEATS, seed)
    return {**{metric: at[metric]["mean"] for metric in METRICS}, "base_rate": PAPER_BASE_RATE}


def check_init(init: Path, benchmark: Manifest, seed: int) -> None:
    """An --init must not have seen the ID validation images the sweep selects on."""
    if "id_val" in benchmark.split_names:
        return

    _, payload = load_classifier(init, len(benchmark.id_class_names))
    held_out = payload.get("held_out_id_validation")
    record = id_validation(benchmark, Path("."), seed).record
    if not isinstance(held_out, dict) or held_out.get("paths_sha256") != record["paths_sha256"]:
        raise FgoodError(f"{init}: trained on the ID validation images the sweep selects on ({benchmark.name} has no "
                         f"id_val split; they are carved from id_train with --seed {seed}); omit --init and the sweep "
                         f"trains its standard model without them, or give an earlier sweep's baseline/train/classifier.pt "
                         f"of the same --seed")


def _given_val_set(path: Path, benchmark: Manifest) -> Manifest:
    manifest = Manifest.load(path)
    if not is_validation_outliers(manifest):
        raise FgoodError(f"{manifest.path}: not a set of validation outliers (build-ood-set synthetic-val); test OOD sets "
                         f"never select hyperparameters, give them to --evaluate-test --ood")
    source = manifest.data["sample"]["generated_from"].get("benchmark")
    if source != benchmark.name:
        raise FgoodError(f"{manifest.path}: generated from benchmark {source}'s ID images, not {benchmark.name}'s")
    return manifest


def _built_val_set(request: SweepRequest, out: Path, benchmark: Manifest, seed: int, image_size: int) -> Manifest:
    """Appendix D.3's validation outliers of the benchmark, built once into OUT/val-ood (seeded)."""
    target = out / VAL_OOD_FOLDER / "synthetic-val" / "manifest.json"
    if not target.is_file():
        build_synthetic_val_set(benchmark.path, request.root, out / VAL_OOD_FOLDER, per_kind=request.val_ood_size,
                                seed=seed, image_size=image_size, name="synthetic-val")
    return Manifest.load(target)


def _test_specs(request: SweepRequest) -> list[str]:
    if not request.evaluate_test:
        return []
    specs = request.test_ood or ["holdout"]
    taken = []
    for spec in specs:
        if spec != "holdout":
            name, path = named_manifest(spec)
            taken.append(check_set_name(name, "--ood", taken=taken))  # before any training, as evaluate checks it
            if name == VAL:
                raise FgoodError(f"--ood {spec!r}: the name {VAL!r} is the validation outliers'; choose another")
            if is_validation_outliers(Manifest.load(path)):
                raise FgoodError(f"--ood {spec!r}: validation outliers are not a test set; give them with --val-ood")
    return specs


def _settings(request: SweepRequest, benchmark: Manifest, scorer: str, seed: int, val_set: Manifest | None,
              fine_tune: bool, recipe) -> dict:
    """What a grid point's training and validation depend on (pinned in sweep.json)."""
    if val_set is not None:
        validation = {"manifest_sha256": sha256_file(val_set.path)}
    else:
        validation = {"built": {"per_kind": request.val_ood_size, "seed": seed,
                                "image_size": request.settings.get("image_size") or recipe.image_size}}
    return {
        "method": request.method,
        "benchmark": {"name": benchmark.name, "manifest_sha256": sha256_file(benchmark.path)},
        "seed": seed,
        "training": {k: v for k, v in sorted(request.settings.items()) if k not in ("device", "workers")},
        "epochs": request.epochs,
        "fine_tuned_from": (("--init " + sha256_file(Path(request.init).expanduser())) if request.init
                            else "a standard model trained here" if fine_tune else None),
        "standard_epochs": request.standard_epochs if fine_tune and request.init is None else None,
        "outliers_manifest_sha256": sha256_file(Manifest.load(request.outliers).path) if request.outliers else None,
        "outlier_batch": request.outlier_batch,
        "validation_outliers": validation,
        "scorer": scorer,
    }


class _Runner:
    """Trains a point with ``train`` and scores it with ``evaluate``, each resumable."""
    def __init__(self, request: SweepRequest, out: Path, benchmark: Manifest, scorer: str, seed: int, val_set: Manifest,
                 test_specs: list[str]):
        self.request, self.out, self.benchmark, self.scorer, self.seed, self.val_set = request, out, benchmark, scorer, seed, val_set
        self.test_specs = test_specs
        settings = request.settings
        # where and in what batches evaluate runs: what was given, else evaluate's own defaults
        self.scoring = {k: settings[k] for k in ("batch_size", "device", "workers") if settings.get(k) is not None}
        rows = val_set.split("ood_test")
        self.kinds = dict(zip(rows.paths, rows.class_names))  # synthetic-val: each image's kind is its class name

    def train(self, folder: Path, method: str, hyper: dict, init: Path | None, epochs: int | None, seed: int) -> Path:
        request = self.request
        outliers = method in OUTLIER_METHODS
        settings = request.settings if seed == self.seed else {**request.settings, "seed": seed}  # the run's training seed
        return training.train(TrainRequest(
            method=method, manifest=self.benchmark.path, root=request.root, out=folder,
            outliers=request.outliers if outliers else None, outlier_root=request.outlier_root if outliers else None,
            settings=settings, epochs=epochs, hyper=hyper, init=init if method != "standard" else None,
            from_scratch=request.from_scratch and method != "standard", outlier_batch=request.outlier_batch if outliers else None,
            hold_out_validation=self.seed, summary_accuracy=False, resume=True, progress=request.progress,
        ))

    def runs(self, folder: Path, name: str, point: dict, seeds: list[int], trained) -> dict:
        """The point's row: its one run (``trained(folder, seed)``), or with several seeds the mean
        over a run per seed (:func:`mean_of_runs`), each in its :func:`seed_folder`."""
        if len(seeds) == 1:
            return self.point(folder, name, point, lambda: trained(folder, seeds[0]))
        stages = Stages("seed", len(seeds), enabled=self.request.progress)
        runs = []
        for k, run_seed in enumerate(seeds):
            run = seed_folder(folder, run_seed, self.seed)
            with stages.stage(k, f"{name}, training seed {run_seed}"):
                runs.append(self.point(run, name, point, lambda run=run, run_seed=run_seed: trained(run, run_seed)))
        return mean_of_runs(runs, seeds)

    def point(self, folder: Path, name: str, point: dict, trained) -> dict:
        """The point's result.json (validation; and test when asked), training it first if needed."""
        done = folder / "result.json"
        if done.exists():
            row = json.loads(done.read_text(encoding="utf-8"))
        else:
            checkpoint = Path(trained())
            row = {"name": name, "point": point, **self._validate(checkpoint, folder / "eval-val")}
            folder.mkdir(parents=True, exist_ok=True)
            write_files(folder, {"result.json": json_bytes(row)})
        if self.test_specs:
            row = {**row, "test": self._test(self.out / row["checkpoint"], row["checkpoint_sha256"], folder)}
        return row

    def _recorded(self, checkpoint: Path) -> str:
        """A checkpoint's path as results record it: relative to the sweep's folder when inside it
        (the outputs do not depend on where the sweep ran), else absolute."""
        try:
            return checkpoint.resolve().relative_to(self.out.resolve()).as_posix()
        except ValueError:
            return str(checkpoint.resolve())

    def _validate(self, checkpoint: Path, out: Path) -> dict:
        results = evaluation.evaluate(EvaluateRequest(
            checkpoint=checkpoint, manifest=self.benchmark.path, root=self.request.root, out=out,
            ood=[f"{VAL}={self.val_set.path}"], ood_roots={VAL: self.val_set.folder / "images"},
            scorers=[self.scorer], **self.scoring, seed=self.seed, progress=self.request.progress,
            overwrite=True,  # an evaluation a killed sweep left unfinished
        ))
        record = results["settings"]["id_validation"]
        if not record.get("held_out_in_training"):
            raise FgoodError(f"{checkpoint}: was trained on the ID validation images it would be selected on")
        per_kind = self._per_kind(out / "scores.parquet")
        mean = {metric: float(np.mean([m[key] for m in per_kind.values()])) for metric, key in SELECT_METRICS.items()}
        return {
            "checkpoint": self._recorded(checkpoint), "checkpoint_sha256": results["checkpoint_sha256"],
            "validation": {"accuracy": results["id_val_accuracy"], **mean, "per_kind": per_kind,
                           "pooled": results["metrics"][VAL][self.scorer], "id_validation": record,
                           "counts": {"id_val": results["counts"]["id_val"], VAL: results["counts"][VAL]}},
        }

    def _per_kind(self, scores_path: Path) -> dict[str, dict]:
        """Each kind of validation outlier against the ID validation images (the OE code's validation
        mode), as the paper's protocol counts them: ID:OOD = 5:1 (Appendix C), the mean over seeded
        draws; every image where fewer than 5 ID validation images make 5:1 impossible."""
        import pyarrow.parquet as pq

        table = pq.read_table(scores_path, columns=["path", "set", self.scorer])
        sets = np.asarray(table.column("set").to_pylist())
        paths = table.column("path").to_pylist()
        values = table.column(self.scorer).to_numpy()
        kinds = np.asarray([self.kinds.get(p, "") if s == VAL else "" for p, s in zip(paths, sets)])
        id_scores = values[sets == "id_val"]
        ordered = list(dict.fromkeys(self.kinds.values()))
        return {kind: kind_metrics(id_scores, values[kinds == kind], self.seed) for kind in ordered}

    def _test(self, checkpoint: Path, checkpoint_sha256: str, folder: Path) -> dict:
        """The test OOD sets, for analysis: test.json (reused while the sets and protocol are the same)."""
        spec = {"ood": self.test_specs, "protocol": self.request.protocol, "scorer": self.scorer,
                "checkpoint_sha256": checkpoint_sha256}
        done = folder / "test.json"
        if done.exists():
            test = json.loads(done.read_text(encoding="utf-8"))
            if test["spec"] == spec:
                return test
        results = evaluation.evaluate(EvaluateRequest(
            checkpoint=checkpoint, manifest=self.benchmark.path, root=self.request.root, out=folder / "eval-test",
            ood=self.test_specs, ood_roots=self.request.test_ood_roots, scorers=[self.scorer], **self.scoring,
            requested=Requested(protocol=self.request.protocol), seed=self.seed, progress=self.request.progress,
            overwrite=True,
        ))
        metrics = {name: {metric: metric_value(by_scorer[self.scorer][key])[0] for metric, key in SELECT_METRICS.items()}
                   for name, by_scorer in results["metrics"].items()}
        test = {"spec": spec, "protocol": results["protocol"], "protocol_text": describe(results),
                "id_accuracy": results["id_accuracy"], "metrics": metrics}
        write_files(folder, {"test.json": json_bytes(test)})
        return test


def _summary(request: SweepRequest, settings: dict, grid, rows: list[dict], baseline: dict | None, selection: dict) -> dict:
    chosen = next(r for r in rows if r["name"] == selection["selected"])
    warning = None
    if baseline is not None and 100 * chosen["validation"]["accuracy"] < 100 * baseline["validation"]["accuracy"] - request.tolerance - 1e-9:
        warning = (f"the selected point's ID validation accuracy ({100 * chosen['validation']['accuracy']:.1f}%) is more than "
                   f"{request.tolerance:g} point{'' if request.tolerance == 1 else 's'} below the standard model's ({100 * baseline['validation']['accuracy']:.1f}%)")
    return {
        "toolkit": f"fgood-bench {__version__}",
        "settings": settings,
        "grid": {key: values for key, values in grid},
        "selection": {**selection, "point": chosen["point"], "checkpoint": chosen["checkpoint"],
                      "checkpoint_sha256": chosen["checkpoint_sha256"],
                      "validation": {k: chosen["validation"][k] for k in ("accuracy", *SELECT_METRICS)},
                      "warning": warning},
        "validation_protocol": (f"{settings['scorer']} scores; each kind of validation outlier against the ID validation "
                                "images, metrics averaged over the kinds (hendrycks/outlier-exposure CIFAR/test.py "
                                "--validate); OOD positive, AUPR = AUPR-out (the paper's convention)"),
        "baseline": baseline,
        "points": rows,
        "test": ({"note": "analysis only: the test OOD sets are evaluated after the selection and never used by it",
                  "sets": rows[0]["test"]["spec"]["ood"], "protocol": rows[0]["test"]["protocol"],
                  "protocol_text": rows[0]["test"]["protocol_text"]}
                 if request.evaluate_test else None),
    }


def _write(out: Path, summary: dict, figures: FigureFormat | None = None) -> None:
    """results.json (everything), selected.json (the point and the rule), the grid tables and heat maps."""
    selected = {k: summary["selection"][k] for k in ("point", "checkpoint", "checkpoint_sha256", "validation", "rule",
                                                     "metric", "tolerance_points", "reference", "reference_accuracy",
                                                     "eligible", "warning")}
    selected.update({k: summary["selection"][k] for k in ("std", "runs") if k in summary["selection"]})  # --seeds N
    selected = {"method": summary["settings"]["method"], "benchmark": summary["settings"]["benchmark"]["name"], **selected}
    files = {
        "results.json": json_bytes(summary),
        "selected.json": json_bytes(selected),
        "grid.csv": grid_csv(summary).encode("utf-8"),
        "grid.md": sweep_markdown(summary).encode("utf-8"),
    }
    files.update(heatmaps(summary, figures))
    # the heat maps of an earlier run of this sweep in other formats or of another grid would show an old selection
    clear_outputs(out, [p.name for p in out.glob("heatmap-*") if p.suffix[1:] in FORMATS and p.name not in files])
    write_files(out, files)
