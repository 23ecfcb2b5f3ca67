"""The paper's result tables as data, and a report's numbers beside them (``report --paper``).

``resources/paper_tables.csv`` holds Table 1 (AUPR), Table 5 (FPR95 / AUROC / AUPR on the five
fine-grained benchmarks), Table 6 (their ID accuracies), Table 7 (INet-A/B) and Table 8 (INet
accuracies), in %, each value with the table, row and column it was read from
(``scripts/paper_tables.py`` wrote it from the paper's text). The comparison uses Tables 5-8;
Table 1 repeats Table 5's AUPR (four of its cells differ from Table 5, noted in the file).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

from fgood_bench.errors import FgoodError
from fgood_bench.evaluation.protocol import describe, is_paper_protocol

# (training method, scorer) -> the paper's method. OE and MixupOE threshold the softmax
# confidence (Section 3.3), EnergyOE the energy score (Liu et al. 2020).
PAPER_METHOD = {
    **{("standard", scorer): scorer for scorer in ("msp", "odin", "energy", "mahalanobis", "gram")},
    ("rotation", "rotation"): "rotation",
    ("oe", "msp"): "oe",
    ("energy-oe", "energy"): "energy-oe",
    ("mixupoe", "msp"): "mixupoe",
}
METHOD_LABEL = {"msp": "MSP", "odin": "ODIN*", "energy": "Energy", "mahalanobis": "Mahalanobis*", "gram": "Gram Matrices*",
                "rotation": "Rotation", "oe": "OE", "energy-oe": "EnergyOE", "mixupoe": "MixupOE", "standard": "Standard"}
# OOD set names a user may give (evaluate --ood NAME=...) -> the paper's column
OOD_ALIASES = {"holdout": "holdout", "places365": "places365", "places": "places365", "textures": "textures",
               "dtd": "textures", "lsun": "lsun"}
# INet-A and INet-B are each other's OOD set (Section 5.5): the benchmark's holdout split
HOLDOUT_NAMES = {"inet-a": "inet-b", "inet-b": "inet-a"}
METRIC_LABEL = {"fpr95": "FPR95 ↓", "auroc": "AUROC ↑", "aupr": "AUPR ↑", "accuracy": "accuracy ↑"}
ROUNDING = 0.05  # the paper prints one decimal


@dataclass(frozen=True)
class PaperValue:
    table: str
    benchmark: str
    method: str
    training: str  # "fine-tune", "scratch", or "" where the table does not distinguish
    ood_set: str
    metric: str
    value: float
    std: float
    row: str
    column: str
    note: str

    def source(self) -> str:
        return f"Table {self.table}, row {self.row}, column {self.column}" + (f" ({self.note})" if self.note else "")


@lru_cache(maxsize=1)
def paper_values() -> tuple[PaperValue, ...]:
    text = (files("fgood_bench.evaluation") / "resources" / "paper_tables.csv").read_text(encoding="utf-8")
    return tuple(PaperValue(**{**row, "value": float(row["value"]), "std": float(row["std"])})
                 for row in csv.DictReader(text.splitlines()))


def lookup(benchmark: str, method: str, training: str, metric: str, ood_set: str = "") -> PaperValue | None:
    """The Table 5-8 value for this benchmark, method, training (ignored where the paper has one row), OOD set, metric."""
    for value in paper_values():
        if (value.table != "1" and (value.benchmark, value.method, value.ood_set, value.metric) == (benchmark, method, ood_set, metric)
                and value.training in ("", training)):
            return value
    return None


@dataclass
class Comparison:
    ood_set: str  # the run's name for it ("" for the accuracy)
    method: str
    metric: str
    mean: float  # %
    std: float
    paper: PaperValue

    @property
    def difference(self) -> float:
        return self.mean - self.paper.value

    @property
    def disagrees(self) -> bool:
        """Beyond two standard deviations of the difference (both sides' run-to-run std), plus the paper's rounding."""
        return abs(self.difference) > 2 * math.hypot(self.std, self.paper.std) + ROUNDING


def _ood_column(benchmark: str, name: str) -> str | None:
    name = name.lower()
    if HOLDOUT_NAMES.get(benchmark) == name:
        return "holdout"
    return OOD_ALIASES.get(name)


def compare(report: dict) -> tuple[list[Comparison], list[str]]:
    """The report's values beside the paper's, and what had no counterpart in the paper."""
    if not is_paper_protocol(report):
        raise FgoodError("report --paper: these runs were not evaluated with the paper's protocol (ID:OOD = 5:1, "
                         "metric convention `paper`, Appendix C); evaluate them with --protocol paper")
    benchmark = report["benchmark"]["name"].lower()
    benchmarks = sorted({v.benchmark for v in paper_values()})
    if benchmark not in benchmarks:
        raise FgoodError(f"report --paper: the paper has no benchmark {benchmark!r} (it has {', '.join(benchmarks)})")
    training = report.get("training") or {}
    method = training.get("method") or "standard"  # a bare state dict: taken as a standard model
    variant = "fine-tune" if training.get("fine_tuned") else "scratch"
    rows, missing = [], []
    accuracy = lookup(benchmark, method, variant, "accuracy")
    if accuracy and report.get("id_accuracy") is not None:  # None: scores only (evaluate_scores), no class predictions
        mean, std = _stats(report["id_accuracy"])
        rows.append(Comparison("", METHOD_LABEL[method], "accuracy", mean, std, accuracy))
    for ood_set, by_scorer in report["metrics"].items():
        column = _ood_column(benchmark, ood_set)
        for scorer, metrics in by_scorer.items():
            paper_method = PAPER_METHOD.get((method, scorer))
            found = False
            for metric, key in (("fpr95", "fpr95"), ("auroc", "auroc"), ("aupr", "aupr_out")):
                value = lookup(benchmark, paper_method, variant, metric, column) if paper_method and column else None
                if value:
                    mean, std = _stats(metrics[key])
                    rows.append(Comparison(ood_set, METHOD_LABEL[paper_method], metric, mean, std, value))
                    found = True
            if not found:
                missing.append(f"{scorer} on {ood_set}")
    return rows, missing


def _stats(entry) -> tuple[float, float]:
    """(mean, std) in % of a report entry: {"mean", "std", ...} over runs, or one run's value."""
    if isinstance(entry, dict):
        return 100 * entry["mean"], 100 * entry["std"]
    return 100 * entry, 0.0


def _runs(report: dict) -> int:
    return len(report.get("runs", [])) or 1


def comparison_markdown(report: dict) -> str:
    rows, missing = compare(report)
    training = report.get("training") or {}
    lines = [
        f"**{report['benchmark']['name']} beside the paper** (%, yours: mean ± std over {_runs(report)} run(s); "
        f"the paper's: mean ± std over 5 runs, Appendix D). Training: {training.get('method') or 'standard (assumed)'}"
        + (", fine-tuned" if training.get("fine_tuned") else "") + ".",
        "",
        describe(report),
        "",
        "| OOD set | method | metric | yours | paper | difference | | source |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        mark = "✗" if row.disagrees else ""
        lines.append(f"| {row.ood_set or 'ID test'} | {row.method} | {METRIC_LABEL[row.metric]} | {row.mean:.1f} ± {row.std:.1f} "
                     f"| {row.paper.value:.1f} ± {row.paper.std:.1f} | {round(row.difference, 1) + 0.0:+.1f} | {mark} | {row.paper.source()} |")
    lines += ["", f"✗: |difference| > 2·√(std² + std_paper²) + {ROUNDING} (the paper rounds to 0.1): "
              f"{sum(r.disagrees for r in rows)} of {len(rows)} values disagree."]
    if missing:
        lines.append(f"No paper value for: {', '.join(missing)}.")
    scorers = (report.get("settings") or {}).get("scorers") or {}
    on_stages = [name for name in ("mahalanobis", "gram") if (scorers.get(name) or {}).get("feature_layers") == "stages"]
    if on_stages:
        lines.append(f"Note: {' and '.join(on_stages)} read the four stage outputs here (--feature-layers stages); the "
                     "paper's Appendix D.2 reads every residual block (--feature-layers blocks, docs/evaluation.md).")
    return "\n".join(lines) + "\n"
