"""Evaluation reports: results.json, a CSV and a Markdown table laid out like the paper's Table 5,
and their aggregation over several runs (seeds) into mean +- std."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from fgood_bench.errors import FgoodError
from fgood_bench.manifests.files import write_folder
from fgood_bench.metrics import METRICS

TABLE_METRICS = ("fpr95", "auroc", "aupr_out")  # the paper's FPR95 / AUROC / AUPR (OOD positive)


def _value(entry) -> tuple[float, float | None]:
    """(value, std) of a metric entry: a float, or {"mean", "std"} from base-rate subsampling."""
    return (entry["mean"], entry["std"]) if isinstance(entry, dict) else (entry, None)


def _cell(metrics: dict) -> str:
    parts = []
    for metric in TABLE_METRICS:
        value, std = _value(metrics[metric])
        parts.append(f"{100 * value:.1f}" + (f" ± {100 * std:.1f}" if std is not None else ""))
    return " / ".join(parts)


def markdown_table(results: dict) -> str:
    sets = list(results["metrics"])
    scorers = results["scorers"]
    base = results["base_rate"]
    base_text = f"ID:OOD = {base['id_to_ood']}:1, {base['repeats']} seeded draws" if isinstance(base, dict) else "all images"
    accuracy, accuracy_std = _value(results["id_accuracy"])
    accuracy_text = ("n/a (scores only)" if accuracy is None else  # fgood_bench.evaluate_scores: no class predictions
                     f"{100 * accuracy:.1f}%" + (f" ± {100 * accuracy_std:.1f}" if accuracy_std is not None else ""))
    lines = [
        f"**{results['benchmark']['name']}**: FPR95 ↓ / AUROC ↑ / AUPR ↑ (%), OOD positive, base rate: {base_text}. "
        f"ID accuracy {accuracy_text}.",
        "",
        "| scorer | " + " | ".join(sets) + " |",
        "|---|" + "---|" * len(sets),
    ]
    for scorer in scorers:
        lines.append(f"| {scorer} | " + " | ".join(_cell(results["metrics"][s][scorer]) for s in sets) + " |")
    return "\n".join(lines) + "\n"


def csv_table(results: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["ood_set", "scorer", *METRICS, *(f"{m}_std" for m in METRICS)])
    for ood_set, by_scorer in results["metrics"].items():
        for scorer, metrics in by_scorer.items():
            values = [_value(metrics[m]) for m in METRICS]
            writer.writerow([ood_set, scorer, *(repr(v) for v, _ in values), *("" if s is None else repr(s) for _, s in values)])
    return buffer.getvalue()


def write_reports(results: dict, out: Path) -> None:
    """results.json, results.csv and results.md in ``out`` (next to files already there)."""
    files = {
        "results.json": (json.dumps(results, indent=2) + "\n").encode(),
        "results.csv": csv_table(results).encode(),
        "results.md": markdown_table(results).encode(),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        partial = out / f".{name}.partial"
        partial.write_bytes(content)
        partial.replace(out / name)


def aggregate(run_dirs: list[Path]) -> dict:
    """Mean and std over runs of every metric and of the ID accuracy (runs must match in sets and scorers)."""
    runs = []
    for folder in run_dirs:
        path = Path(folder) / "results.json"
        try:
            runs.append(json.loads(path.read_text()))
        except FileNotFoundError:
            raise FgoodError(f"{path}: no results.json (run fgood-bench evaluate first)") from None
        except json.JSONDecodeError as err:
            raise FgoodError(f"{path}: not valid JSON ({err})") from None
    def comparable(run: dict, key: str):
        value = run[key]
        return {k: v for k, v in value.items() if k != "seed"} if isinstance(value, dict) else value  # seeds differ

    first = runs[0]
    for folder, run in zip(run_dirs, runs):
        for key in ("convention", "base_rate", "scorers"):
            if comparable(run, key) != comparable(first, key):
                raise FgoodError(f"{folder}: its {key} differs from {run_dirs[0]}'s; only like runs can be aggregated")
        if run["benchmark"]["name"] != first["benchmark"]["name"] or list(run["metrics"]) != list(first["metrics"]):
            raise FgoodError(f"{folder}: another benchmark or other OOD sets than {run_dirs[0]}")

    def stats(values: list[float]) -> dict:
        return {"mean": float(np.mean(values)), "std": float(np.std(values)), "runs": len(values)}

    metrics = {
        ood_set: {
            scorer: {m: stats([_value(run["metrics"][ood_set][scorer][m])[0] for run in runs]) for m in METRICS}
            for scorer in first["scorers"]
        }
        for ood_set in first["metrics"]
    }
    return {
        **{k: first[k] for k in ("toolkit", "convention", "metrics_reported", "benchmark", "scorers")},
        "base_rate": comparable(first, "base_rate"),
        "runs": [str(d) for d in run_dirs],
        "id_accuracy": stats([_value(run["id_accuracy"])[0] for run in runs]),
        "metrics": metrics,
    }


def write_aggregate(report: dict, out: Path) -> None:
    write_folder(out, {
        "report.json": (json.dumps(report, indent=2) + "\n").encode(),
        "report.csv": csv_table(report).encode(),
        "report.md": markdown_table(report).encode(),
    })
