"""Evaluation reports: results.json, a CSV and a Markdown table laid out like the paper's Table 5,
and their aggregation over several runs (seeds) into mean +- std."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from fgood_bench.errors import FgoodError
from fgood_bench.inputs import clip, cut, read_json
from fgood_bench.evaluation.protocol import base_rate_of, describe, metric_convention, protocol_name
from fgood_bench.outputs import clear_outputs, json_bytes, run_folder, write_files
from fgood_bench.metrics import METRICS

TABLE_METRICS = ("fpr95", "auroc", "aupr_out")  # the paper's FPR95 / AUROC / AUPR (OOD positive)
# what metrics.ood_metrics_at_base_rate records beside the metrics: key -> (type, smallest value)
DRAW_KEYS = {"base_rate": (float, 0.0), "n_id": (int, 0), "n_ood": (int, 0), "repeats": (int, 1), "seed": (int, None)}


# -- the results schema: what report, plot and report --paper may rely on ---------------------


class _Results:
    """Checks a results.json (or report.json) document: every violation is one line naming the file and
    the field (``metrics.holdout.msp.auroc``), quoting at most ~60 characters of the value."""

    def __init__(self, source):
        self.source = source

    def fail(self, field: str, expected: str, value) -> FgoodError:
        return FgoodError(f"{self.source}: {field}: expected {expected}, got {cut(value, 60)}")

    def object(self, value, field: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(field, "an object", value)
        return value

    def text(self, value, field: str, optional: bool = False) -> None:
        if not (isinstance(value, str) or (optional and value is None)):
            raise self.fail(field, "a string" + (" or null" if optional else ""), value)

    def number(self, value, field: str, low: float | None = None, high: float | None = None, integer: bool = False):
        """A JSON number (not a boolean), finite, within [low, high]."""
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or (isinstance(value, float) and not math.isfinite(value)):
            raise self.fail(field, "an integer" if integer else "a finite number", value)
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"[{low:g}, {high:g}]" if high is not None else f">= {low:g}"
            raise self.fail(field, f"{'an integer' if integer else 'a number'} in {bounds}", value)

    def fraction(self, entry, field: str, optional: bool = False) -> None:
        """A metric or accuracy: a fraction in [0, 1], or {"mean", "std"[, "runs"]} of fractions."""
        if optional and entry is None:
            return
        if isinstance(entry, dict):
            for key in entry:
                if key not in ("mean", "std", "runs"):
                    raise FgoodError(f"{self.source}: {field}.{clip(str(key), 40)}: unknown key (expected mean, std, runs)")
            for key in ("mean", "std"):
                if key not in entry:
                    raise FgoodError(f"{self.source}: {field}: no {key!r}")
                self.number(entry[key], f"{field}.{key}", 0.0, 1.0)
            if "runs" in entry:
                self.number(entry["runs"], f"{field}.runs", 1, integer=True)
            return
        if isinstance(entry, (int, float)) and not isinstance(entry, bool):
            self.number(entry, field, 0.0, 1.0)
            return
        raise self.fail(field, "a fraction in [0, 1] or {\"mean\", \"std\"}" + (" or null" if optional else ""), entry)

    def check(self, results, scores: bool = True) -> dict:
        results = self.object(results, "(top level)")
        with_scores = scores or "scorers" in results or "metrics" in results
        for key in ("benchmark", "scorers", "metrics") if with_scores else ("benchmark",):
            if key not in results:
                raise FgoodError(f"{self.source}: no {key!r}; not a results.json written by fgood-bench evaluate")
        self.text(self.object(results["benchmark"], "benchmark").get("name"), "benchmark.name")
        if with_scores:
            self.metrics(results)
        self.fraction(results.get("id_accuracy"), "id_accuracy", optional=True)
        self.fields(results)
        return results

    def metrics(self, results: dict) -> None:
        """``scorers`` (unique names) and ``metrics``: {OOD set: {scorer: {metric: fraction}}} for exactly them."""
        scorers = results["scorers"]
        if not isinstance(scorers, list) or not scorers:
            raise self.fail("scorers", "a list of scorer names", scorers)
        seen = set()
        for i, name in enumerate(scorers):
            if not isinstance(name, str) or not name:
                raise self.fail(f"scorers[{i}]", "a scorer name", name)
            if name in seen:
                raise FgoodError(f"{self.source}: scorers: {cut(name)} is listed twice")
            seen.add(name)
        metrics = self.object(results["metrics"], "metrics")
        if not metrics:
            raise FgoodError(f"{self.source}: metrics: no OOD set")
        for ood_set, by_scorer in metrics.items():
            where = f"metrics.{clip(str(ood_set), 40)}"
            by_scorer = self.object(by_scorer, where)
            for scorer in by_scorer:
                if scorer not in seen:
                    raise FgoodError(f"{self.source}: {where}.{clip(str(scorer), 40)}: unknown scorer (scorers lists "
                                     f"{clip(', '.join(scorers), 60)})")
            for scorer in scorers:
                if scorer not in by_scorer:
                    raise FgoodError(f"{self.source}: {where}: no {cut(scorer, 40)}, which scorers lists")
                at = f"{where}.{clip(scorer, 40)}"
                entry = self.object(by_scorer[scorer], at)
                for metric in METRICS:
                    if metric not in entry:
                        raise FgoodError(f"{self.source}: {at}: no {metric!r}")
                    self.fraction(entry[metric], f"{at}.{metric}")
                for key, value in entry.items():
                    if key in METRICS:
                        continue
                    if key not in DRAW_KEYS:
                        raise FgoodError(f"{self.source}: {at}.{clip(str(key), 40)}: unknown metric "
                                         f"(expected {', '.join(METRICS)})")
                    kind, low = DRAW_KEYS[key]
                    self.number(value, f"{at}.{key}", low, integer=kind is int)

    def fields(self, results: dict) -> None:
        """The other fields evaluate writes: each of its type where present."""
        self.fraction(results.get("id_val_accuracy"), "id_val_accuracy", optional=True)
        degenerate = results.get("degenerate_scorers", [])
        if not isinstance(degenerate, list) or not all(isinstance(name, str) for name in degenerate):
            raise self.fail("degenerate_scorers", "a list of scorer names", degenerate)
        for key in ("toolkit", "convention", "metric_convention", "protocol"):
            if key in results:
                self.text(results[key], key)
        if "metrics_reported" in results and not (isinstance(results["metrics_reported"], list)
                                                  and all(isinstance(m, str) for m in results["metrics_reported"])):
            raise self.fail("metrics_reported", "a list of metric names", results["metrics_reported"])
        self.text(results.get("checkpoint_sha256"), "checkpoint_sha256", optional=True)
        base = results.get("base_rate")
        if isinstance(base, dict):
            for key in ("id_to_ood", "repeats"):
                if key not in base:
                    raise FgoodError(f"{self.source}: base_rate: no {key!r}")
            self.number(base["id_to_ood"], "base_rate.id_to_ood", 0.0)
            if base["id_to_ood"] <= 0:
                raise self.fail("base_rate.id_to_ood", "a number > 0", base["id_to_ood"])
            self.number(base["repeats"], "base_rate.repeats", 1, integer=True)
            if "seed" in base:
                self.number(base["seed"], "base_rate.seed", integer=True)
        elif base is not None:
            self.text(base, "base_rate")
        for key, fields in (("model", ("method", "arch", "checkpoint")), ("training", ("method",))):
            if results.get(key) is not None:
                value = self.object(results[key], key)
                for name in fields:
                    self.text(value.get(name), f"{key}.{name}", optional=True)
        training = results.get("training")
        if isinstance(training, dict) and not isinstance(training.get("fine_tuned", False), bool):
            raise self.fail("training.fine_tuned", "true or false", training["fine_tuned"])
        if results.get("settings") is not None:
            settings = self.object(results["settings"], "settings")
            for key in ("model", "scorers"):
                if settings.get(key) is not None:
                    self.object(settings[key], f"settings.{key}")


def check_results(results, source, scores: bool = True) -> dict:
    """``results`` (a results.json or report.json document, read from ``source``) if it fits the results
    schema: an object with ``benchmark.name``, ``scorers`` (unique names) and ``metrics`` as
    {OOD set: {scorer: {metric: fraction}}} for exactly those scorers and every metric of
    :data:`~fgood_bench.metrics.METRICS`, each a finite number in [0, 1] or {"mean", "std"} of such;
    ``id_accuracy`` a fraction or null; the other fields evaluate writes of their type. Otherwise one
    :class:`FgoodError` line naming the file and the field. ``scores=False`` (``plot``, which reads only
    the benchmark and the model): ``scorers`` and ``metrics`` may be absent; where present they are checked."""
    return _Results(source).check(results, scores)


def read_results(path: Path, scores: bool = True) -> dict:
    """A results.json, read strictly (a regular file, UTF-8, no key twice, no NaN; inputs.read_json) and
    checked against the results schema (:func:`check_results`)."""
    return check_results(read_json(path, "results file"), path, scores)


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
        held_out = ((results.get("settings") or {}).get("id_validation") or {}).get("held_out_in_training")
        which = {True: ", held out of training", False: ", which the model was trained on"}.get(held_out, "")
        accuracy_text += f" ({100 * results['id_val_accuracy']:.1f}% on the ID validation images{which})"
    lines = [
        f"**{results['benchmark']['name']}**: FPR95 ↓ / AUROC ↑ / AUPR-out ↑ (%) as the `{metric_convention(results)}` "
        f"metric convention defines them. ID accuracy {accuracy_text}.",
        "",
        describe(results),
        *([f"Model: {model['method']} ({model['arch']})"
           + (f", checkpoint `{model['checkpoint']}`." if model.get("checkpoint") else ", given in memory (Python API).")]
          if model else []),
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
        if not path.exists() and not path.is_symlink():
            raise FgoodError(f"{path}: no results.json (give evaluate's output folder; run fgood-bench evaluate first)")
        runs.append(read_results(path))
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
        **{k: first[k] for k in ("toolkit", "convention", "metrics_reported", "benchmark", "scorers") if k in first},
        "protocol": protocol_name(base_rate_of(first), metric_convention(first)),
        "metric_convention": metric_convention(first),
        **({"training": first["training"]} if "training" in first else {}),
        "base_rate": comparable(first, "base_rate"),
        "settings": _scoring_settings(first),
        "runs": [str(d) for d in run_dirs],
        "id_accuracy": _accuracy_stats(run_dirs, runs, stats),
        "metrics": metrics,
    }


def _accuracy_stats(run_dirs: list[Path], runs: list[dict], stats) -> dict | None:
    """Mean and std of the runs' ID accuracies; None where every run has none (evaluate_scores: a
    score function makes no class predictions)."""
    accuracies = [metric_value(run.get("id_accuracy"))[0] for run in runs]
    if all(value is None for value in accuracies):
        return None
    if any(value is None for value in accuracies):
        folder = run_dirs[accuracies.index(None)]
        other = next(d for d, value in zip(run_dirs, accuracies) if value is not None)
        raise FgoodError(f"{folder}: has no ID accuracy (scores only) but {other} has one; only like runs can be aggregated")
    return stats(accuracies)


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
