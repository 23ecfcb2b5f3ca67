"""``fgood-bench study random-splits``: the variance of random ID / holdout splits (paper, Figure 2).

The paper (section 3.1, Figure 2) samples 10-class ID splits of Bird at random, trains a
classifier on each and finds accuracy and MSP detection AUPR (holdout = the other classes) to
depend strongly on which classes were drawn; this motivates the ranked split. This study does
the same with fgood-bench's own pipeline: each split is a benchmark manifest with given ID
classes (``build-splits --id-classes``), trained with ``train`` (standard cross-entropy) and
scored with ``evaluate`` against its holdout classes.

Split ``i`` draws its classes from ``numpy.random.default_rng([seed, i])``: the first splits are
the same whatever ``--splits`` is. A split is done when its ``result.json`` exists; a killed study
run again with the same arguments continues with the splits not done (and resumes a split's
training from its last epoch).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fgood_bench import __version__
from fgood_bench.datasets import load_index
from fgood_bench.errors import FgoodError
from fgood_bench.interrupt import forget, keep
from fgood_bench.outputs import clear_outputs, json_bytes, pin_settings, run_folder, sha256_file, write_files
from fgood_bench.progress import Stages
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.paper import get_benchmark
from fgood_bench.tools.figures import FigureFormat, every_format, render_figure
from fgood_bench.tools.loop import TrainConfig
from fgood_bench.tools.settings import Requested

METRICS = ("accuracy", "auroc", "aupr", "fpr95")  # aupr: AUPR-out, holdout classes positive (as the paper's tables)
STUDY_PROTOCOLS = ("paper", "all")


@dataclass
class StudyRequest:
    root: Path
    out: Path
    num_id: int
    benchmark: str | None = None  # a preset (bird, ...) or None with ``dataset``
    dataset: str | None = None
    dataset_options: dict = field(default_factory=dict)
    splits: int = 20
    seed: int = 0
    ranked: Path | None = None  # a build-splits benchmark of the same dataset and K, marked in the plot
    scorer: str = "msp"
    # "paper": ID:OOD = 5:1 with the paper's metric convention (Appendix C), as Figure 2's AUPR is
    # meant to compare; "all": every image of each set (the holdout classes then outnumber the ID
    # classes about 19:1 for Bird with K = 10, and AUPR-out saturates near 1)
    protocol: str = "paper"
    config: TrainConfig = field(default_factory=TrainConfig)
    epochs: int | None = None  # None: the preset's standard-training epochs (Appendix D.1), else config.epochs
    progress: bool = True
    figures: FigureFormat | None = None  # figure2's formats and dpi (None: PNG at 120 dpi); not pinned


def run_study(request: StudyRequest) -> dict:
    """Train and evaluate every split not yet done; write the summary; returns it."""
    from fgood_bench.evaluation.scorers import check_standard_model_scorer

    check_standard_model_scorer(request.scorer)
    if request.protocol not in STUDY_PROTOCOLS:
        raise FgoodError(f"--protocol {request.protocol!r}: choose from {', '.join(STUDY_PROTOCOLS)}")
    preset = get_benchmark(request.benchmark) if request.benchmark else None
    dataset = preset.dataset if preset else request.dataset
    if dataset is None:
        raise FgoodError("name a benchmark (bird, dog, flower, car, aircraft) or give --dataset ID")
    if preset and request.dataset and request.dataset != preset.dataset:
        raise FgoodError(f"benchmark {preset.name} is built from {preset.dataset}, not {request.dataset}")
    index = load_index(dataset, request.root, **request.dataset_options)
    if not 1 <= request.num_id < index.num_classes:
        raise FgoodError(f"num_id (--num-id) {request.num_id}: must be 1..{index.num_classes - 1} ({dataset} has {index.num_classes} classes)")
    config = TrainConfig(**asdict(request.config))
    config.epochs = request.epochs or (preset.epochs if preset else config.epochs)
    ranked = _check_ranked(request, dataset) if request.ranked else None
    out = Path(request.out)
    with run_folder(out, "study random-splits", reuse=True):  # resumable: study.json pins the settings
        return _run_study(request, out, preset, dataset, index, config, ranked)


def _run_study(request: StudyRequest, out: Path, preset, dataset: str, index, config: TrainConfig, ranked) -> dict:
    settings = {
        "benchmark": preset.name if preset else None, "dataset": dataset, "dataset_options": index.options,
        "num_id": request.num_id, "seed": request.seed, "scorer": request.scorer, "protocol": request.protocol,
        "training": {"method": "standard", **config.record()},
    }
    pin_settings(out / "study.json", settings, "study")  # --splits and --ranked may change: more splits, a ranked split added

    rows = []
    stages = Stages("split", request.splits + (1 if ranked else 0), enabled=request.progress)
    for i in range(request.splits):
        rng = np.random.default_rng([request.seed, i])
        classes = sorted(rng.choice(index.num_classes, request.num_id, replace=False).tolist())
        with stages.stage(i, f"split-{i:02d}"):
            rows.append(_run_split(request, out / "splits" / f"split-{i:02d}", f"split-{i:02d}", preset,
                                   dataset, [index.classes[c] for c in classes], config))
        forget()  # the finished split's training is part of it
        keep(out / "splits", f"the finished splits ({i + 1} of {request.splits}) are kept in {out / 'splits'}")
    ranked_row = None
    if ranked:
        with stages.stage(request.splits, "the ranked split"):
            ranked_row = _run_ranked(request, out / f"ranked-{sha256_file(ranked.path)[:12]}", ranked, config)
    summary = {
        "toolkit": f"fgood-bench {__version__}",
        "settings": settings,
        "metric_convention": "accuracy on the ID test images; auroc, aupr (AUPR-out) and fpr95 with the holdout "
                             "classes' test images as the positive (OOD) class, see docs/evaluation.md; "
                             + ("at ID:OOD = 5:1 by seeded subsampling (the paper's protocol, Appendix C)"
                                if request.protocol == "paper" else "over every image of each set (no base rate)"),
        "splits": rows,
        "ranked_manifest_sha256": sha256_file(ranked.path) if ranked else None,
        "spread": {m: _spread([r[m] for r in rows]) for m in METRICS},
        "ranked": ranked_row,
    }
    clear_outputs(out, every_format("figure2"))  # an earlier run's figure in another format would be stale
    write_files(out, {"results.json": json_bytes(summary),
                      "results.csv": _csv(rows, ranked_row).encode("utf-8"),
                      "results.md": study_markdown(summary).encode("utf-8"),
                      **figure2_files(summary, request.figures or FigureFormat())})
    return summary


def _check_ranked(request: StudyRequest, dataset: str) -> Manifest:
    ranked = Manifest.load(request.ranked)
    if ranked.kind != "benchmark" or ranked.dataset != dataset or ranked.dataset_options != request.dataset_options:
        raise FgoodError(f"{ranked.path}: --ranked takes a benchmark of {dataset} with the same dataset options")
    if ranked.data["num_id"] != request.num_id:
        raise FgoodError(f"{ranked.path}: has K={ranked.data['num_id']} ID classes, the study draws {request.num_id}")
    return ranked


def _run_split(request, folder: Path, name: str, preset, dataset: str, class_names: list[str], config) -> dict:
    done = folder / "result.json"
    if done.exists():
        return json.loads(done.read_text(encoding="utf-8"))
    from fgood_bench.ranking.build import BuildRequest, build_splits

    folder.mkdir(parents=True, exist_ok=True)
    write_files(folder, {"id_classes.txt": ("\n".join(class_names) + "\n").encode("utf-8")})
    manifest = build_splits(BuildRequest(
        root=request.root, out=folder, benchmark=preset.name if preset else None, dataset=dataset, name=name,
        dataset_options=request.dataset_options, id_classes=folder / "id_classes.txt", progress=False,
        overwrite=True,  # the study's own split, rebuilt identically when a killed study resumes
    ))
    return _train_and_evaluate(request, folder, manifest, config, {"split": name, "id_classes": class_names})


def _run_ranked(request, folder: Path, ranked: Manifest, config) -> dict:
    done = folder / "result.json"
    if done.exists():
        return json.loads(done.read_text(encoding="utf-8"))
    return _train_and_evaluate(request, folder, ranked.path, config, {"split": "ranked", "id_classes": ranked.id_class_names})


def _train_and_evaluate(request, folder: Path, manifest: Path, config: TrainConfig, row: dict) -> dict:
    """The existing train and evaluate commands, then the split's result.json (which marks it done)."""
    from fgood_bench.evaluation.evaluate import EvaluateRequest, evaluate
    from fgood_bench.training.train import TrainRequest, train

    checkpoint = train(TrainRequest(method="standard", manifest=manifest, root=request.root, out=folder / "train",
                                    config=config, epochs=config.epochs, summary_accuracy=False, resume=True,
                                    progress=request.progress))
    requested = Requested(protocol="paper") if request.protocol == "paper" else Requested()
    results = evaluate(EvaluateRequest(
        checkpoint=checkpoint, manifest=manifest, root=request.root, out=folder / "eval", ood=["holdout"],
        scorers=[request.scorer], requested=requested, batch_size=config.batch_size, device=config.device,
        workers=config.workers, progress=request.progress,
        overwrite=True,  # an evaluation a killed study left unfinished
    ))
    from fgood_bench.evaluation.report import metric_value

    metrics = {name: metric_value(entry)[0] for name, entry in results["metrics"]["holdout"][request.scorer].items()
               if name in ("auroc", "aupr_out", "fpr95")}  # at the base rate: the mean over the seeded draws
    row = {**row, "accuracy": results["id_accuracy"], "auroc": metrics["auroc"], "aupr": metrics["aupr_out"],
           "fpr95": metrics["fpr95"]}
    write_files(folder, {"result.json": json_bytes(row)})
    return row


def _spread(values: list[float]) -> dict:
    array = np.asarray(values, np.float64)
    return {"min": float(array.min()), "max": float(array.max()), "mean": float(array.mean()),
            "std": float(array.std(ddof=1)) if array.size > 1 else 0.0}


def _csv(rows: list[dict], ranked: dict | None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["split", *METRICS, "id_classes"])
    for row in rows + ([ranked] if ranked else []):
        writer.writerow([row["split"], *(repr(row[m]) for m in METRICS), " ".join(row["id_classes"])])
    return buffer.getvalue()


def study_markdown(summary: dict) -> str:
    settings = summary["settings"]
    lines = [
        f"# Random {settings['num_id']}-class splits of {settings['benchmark'] or settings['dataset']}",
        "",
        f"{len(summary['splits'])} split{'' if len(summary['splits']) == 1 else 's'} (seed {settings['seed']}), {settings['training']['arch']} trained "
        f"{settings['training']['epochs']} epochs each; scorer {settings['scorer']}, OOD = the holdout classes, "
        + ("at ID:OOD = 5:1 (the paper's protocol). " if settings.get("protocol", "all") == "paper" else "every image of each set. ")
        + "Sorted by AUPR as the paper's Figure 2.",
        "",
        "| split | accuracy | AUROC | AUPR | FPR95 |",
        "|---|---|---|---|---|",
    ]
    rows = sorted(summary["splits"], key=lambda r: (r["aupr"], r["split"]))
    if summary["ranked"]:
        rows.append(summary["ranked"])
    lines += [f"| {r['split']} | " + " | ".join(f"{100 * r[m]:.1f}" for m in METRICS) + " |" for r in rows]
    lines += ["", "| spread | " + " | ".join(("accuracy", "AUROC", "AUPR", "FPR95")) + " |", "|---|---|---|---|---|"]
    for stat in ("min", "max", "mean", "std"):
        lines.append(f"| {stat} | " + " | ".join(f"{100 * summary['spread'][m][stat]:.1f}" for m in METRICS) + " |")
    return "\n".join(lines) + "\n"


def figure2(summary: dict) -> bytes:
    """PNG (120 dpi): accuracy, AUROC and AUPR of each split, sorted by AUPR; the ranked split as dashed lines."""
    return figure2_files(summary)["figure2.png"]


def figure2_files(summary: dict, figures: FigureFormat = FigureFormat()) -> dict[str, bytes]:
    """``figure2.KIND`` -> bytes for each of ``figures``' formats (see :func:`figure2`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(summary["splits"], key=lambda r: (r["aupr"], r["split"]))
    x = np.arange(len(rows))
    scorer = summary["settings"]["scorer"].upper()
    fig, axes = plt.subplots(3, 1, figsize=(7, 7), dpi=120, sharex=True)
    panels = (("accuracy", "ID accuracy", "tab:blue"), ("auroc", f"AUROC ({scorer})", "tab:green"),
              ("aupr", f"AUPR ({scorer})", "tab:orange"))
    for ax, (metric, label, colour) in zip(axes, panels):
        ax.plot(x, [100 * r[metric] for r in rows], "o-", color=colour, label="random splits")
        if summary["ranked"]:
            ax.axhline(100 * summary["ranked"][metric], color="tab:red", linestyle="--", label="ranked split")
        ax.set_ylabel(f"{label} (%)")
        ax.legend(loc="lower right", frameon=False, fontsize=8)
    axes[-1].set_xlabel("split, sorted by AUPR")
    axes[-1].set_xticks(x, [r["split"].removeprefix("split-") for r in rows], fontsize=7)
    settings = summary["settings"]
    axes[0].set_title(f"{settings['benchmark'] or settings['dataset']}: random {settings['num_id']}-class splits", fontsize=10)
    fig.tight_layout()
    return render_figure(fig, "figure2", figures)
