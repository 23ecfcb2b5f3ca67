"""Evaluation reports: results.json, a CSV and a Markdown table laid out like the paper's Table 5,
and their aggregation over several runs (seeds) into mean +- std."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from fgood_bench.errors import FgoodError
from fgood_bench.evaluation.protocol import base_rate_of, describe, metric_convention, protocol_name
from fgood_bench.outputs import clear_outputs, json_bytes, run_folder, write_files
from fgood_bench.metrics import METRICS

TABLE_METRICS = ("fpr95", "auroc", "aupr_out")  # the paper's FPR95 / AUROC / AUPR (OOD positive)


def metric_value(entry) -> tuple[float, float | None]:
    """(value, std) of a metric entry: a float, or {"mean", "std"} from base-rate subsampling."""
    return (entry["mean"], entry["std"]) if isinstance(entry, dict) else (entry, None)


def _cell(metrics: dict) -> str:
    parts = []
    for metric in TABLE_METRICS:
        value, std = metric_value(metrics[metric])
        parts.append(f"{100 * value:.1f}" + (f" ± {100 * std:.1f}" if std is not None else ""))
    return " / ".join(parts)


def markdown_table(results: dict) -> str:
    sets = list(results["metrics"])
    scorers = results["scorers"]
    accuracy, accuracy_std = metric_value(results["id_accuracy"])
    model = results.get("model")
    accuracy_text = ("n/a (scores only)" if accuracy is None else  # fgood_bench.evaluate_scores: no class predictions
                     f"{100 * accuracy:.1f}%" + (f" ± {100 * accuracy_std:.1f}" if accuracy_std is not None else ""))
    if results.get("id_val_accuracy") is not None:  # a single run scored on ID validation images
        accuracy_text += f" (ID validation images: {100 * results['id_val_accuracy']:.1f}%)"
    lines = [
        f"**{results['benchmark']['name']}**: FPR95 ↓ / AUROC ↑ / AUPR-out ↑ (%) as the `{metric_convention(results)}` "
        f"metric convention defines them. ID accuracy {accuracy_text}.",
        "",
        describe(results),
        *([f"Model: {model['method']} ({model['arch']}), checkpoint `{model['checkpoint']}`."] if model else []),
        "",
        "| scorer | " + " | ".join(sets) + " |",
        "|---|" + "---|" * len(sets),
    ]
    degenerate = set(results.get("degenerate_scorers", []))
    for scorer in scorers:
        name = f"{scorer} (degenerate: one score for all images)" if scorer in degenerate else scorer
        lines.append(f"| {name} | " + " | ".join(_cell(results["metrics"][s][scorer]) for s in sets) + " |")
    return "\n".join(lines) + "\n"


def csv_table(results: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["ood_set", "scorer", *METRICS, *(f"{m}_std" for m in METRICS)])
    for ood_set, by_scorer in results["metrics"].items():
        for scorer, metrics in by_scorer.items():
            values = [metric_value(metrics[m]) for m in METRICS]
            writer.writerow([ood_set, scorer, *(repr(v) for v, _ in values), *("" if s is None else repr(s) for _, s in values)])
    return buffer.getvalue()


def write_reports(results: dict, out: Path) -> None:
    """results.csv, results.md, then results.json (last: it marks a complete evaluation) in ``out``."""
    files = {
        "results.csv": csv_table(results).encode(),
        "results.md": markdown_table(results).encode(),
        "results.json": json_bytes(results),
    }
    write_files(out, files)  # in this order: results.json last


def aggregate(run_dirs: list[Path]) -> dict:
    """Mean and std over runs of every metric and of the ID accuracy (runs must match in sets and scorers)."""
    runs = []
    for folder in run_dirs:
        path = Path(folder) if Path(folder).name == "results.json" else Path(folder) / "results.json"
        try:
            runs.append(json.loads(path.read_text(encoding="utf-8")))
        except (FileNotFoundError, NotADirectoryError):
            raise FgoodError(f"{path}: no results.json (give evaluate's output folder; run fgood-bench evaluate first)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise FgoodError(f"{path}: not valid JSON ({err})") from None
    def comparable(run: dict, key: str):
        value = run.get(key)
        return {k: v for k, v in value.items() if k != "seed"} if isinstance(value, dict) else value  # seeds differ

    first = runs[0]
    _refuse_repeated_runs(run_dirs, runs)
    for folder, run in zip(run_dirs, runs):
        if run["scorers"] != first["scorers"]:
            missing = [s for s in first["scorers"] if s not in run["scorers"]]
            extra = [s for s in run["scorers"] if s not in first["scorers"]]
            raise FgoodError(f"{folder}: its scorers differ from {run_dirs[0]}'s (" + "; ".join(
                [f"it lacks {', '.join(missing)}"] * bool(missing) + [f"it adds {', '.join(extra)}"] * bool(extra)
                + ["same scorers in another order"] * (not missing and not extra))
                + "): evaluate every run with the same --scorers")
        for key in ("convention", "base_rate", "scorers", "training"):
            if comparable(run, key) != comparable(first, key):
                raise FgoodError(f"{folder}: its {key} differs from {run_dirs[0]}'s; only like runs can be aggregated")
        for key, theirs in _scoring_settings(first).items():  # what the numbers depend on besides the model
            mine = _scoring_settings(run).get(key)
            if mine != theirs:
                which = next((k for k in sorted(set(mine or {}) | set(theirs or {}))
                              if (mine or {}).get(k) != (theirs or {}).get(k)), None)
                raise FgoodError(f"{folder}: its settings.{key}{'.' + which if which else ''} differs from {run_dirs[0]}'s "
                                 f"({(mine or {}).get(which)!r} against {(theirs or {}).get(which)!r}); only like runs "
                                 "can be aggregated")
        if run["benchmark"]["name"] != first["benchmark"]["name"] or list(run["metrics"]) != list(first["metrics"]):
            raise FgoodError(f"{folder}: another benchmark or other OOD sets than {run_dirs[0]}")

    def stats(values: list[float]) -> dict:
        return {"mean": float(np.mean(values)), "std": float(np.std(values)), "runs": len(values)}

    metrics = {
        ood_set: {
            scorer: {m: stats([metric_value(run["metrics"][ood_set][scorer][m])[0] for run in runs]) for m in METRICS}
            for scorer in first["scorers"]
        }
        for ood_set in first["metrics"]
    }
    return {
        **{k: first[k] for k in ("toolkit", "convention", "metrics_reported", "benchmark", "scorers")},
        "protocol": protocol_name(base_rate_of(first), metric_convention(first)),
        "metric_convention": metric_convention(first),
        **({"training": first["training"]} if "training" in first else {}),
        "base_rate": comparable(first, "base_rate"),
        "settings": _scoring_settings(first),
        "runs": [str(d) for d in run_dirs],
        "id_accuracy": stats([metric_value(run["id_accuracy"])[0] for run in runs]),
        "metrics": metrics,
    }


def _scoring_settings(run: dict) -> dict:
    """The settings an evaluation's numbers depend on besides the model (results.json's settings:
    architecture, image size and geometry, precision; each scorer's parameters); not the seed nor
    the carved ID validation images, which follow it. Empty for results that predate them."""
    settings = run.get("settings") or {}
    return {key: settings[key] for key in ("model", "scorers") if key in settings}


def _refuse_repeated_runs(run_dirs: list[Path], runs: list[dict]) -> None:
    """report's +- is over trained models, as the paper's (one per training seed). One folder given
    twice would shrink the std towards 0 without new evidence; one checkpoint evaluated twice (e.g.
    with another --seed) differs only by the base-rate draws, whose spread results.json reports."""
    seen: dict = {}
    for folder, run in zip(run_dirs, runs):
        checkpoint = run.get("checkpoint_sha256")
        if Path(folder).resolve() in seen:
            raise FgoodError(f"{folder}: the same run as {seen[Path(folder).resolve()]}; "
                             "report aggregates different runs, e.g. one per training seed")
        if checkpoint and checkpoint in seen:
            raise FgoodError(f"{folder}: the same checkpoint as {seen[checkpoint]}; report's ± is over trained models "
                             "(e.g. one per training seed), and evaluations of one checkpoint differ only by their "
                             "base-rate draws, whose spread each results.json already reports")
        seen[Path(folder).resolve()] = folder
        if checkpoint:
            seen[checkpoint] = folder


REPORT_FILES = ("report.json", "report.csv", "report.md", "paper.md")


def write_aggregate(report: dict, out: Path, extra: dict[str, str] | None = None, overwrite: bool = False) -> None:
    """report.json, report.csv and report.md (and ``extra`` files, name -> text, e.g. paper.md) in ``out``,
    a folder of its own (never an evaluate run's)."""
    files = {
        "report.json": json_bytes(report),
        "report.csv": csv_table(report).encode(),
        "report.md": markdown_table(report).encode(),
        **{name: text.encode() for name, text in (extra or {}).items()},
    }
    with run_folder(out, "report", reuse=overwrite, owned=REPORT_FILES):
        clear_outputs(out, REPORT_FILES)
        write_files(out, files)
