"""The vocabulary (grid keys, metrics, point names) and reports of ``fgood-bench sweep``: the grid as the paper's Table 4 lays it out (Markdown and
CSV), heat maps of 2-D grids, and what the command prints. Validation columns (the selection's)
and test columns (``--evaluate-test``, analysis only) are kept apart in each."""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

import numpy as np

from fgood_bench.errors import plural
from fgood_bench.tools.figures import FigureFormat, render_figure

# Grid keys per method: the names of its ``train`` options (training/methods.py, Hyper; dashes or
# underscores). MixupOE's alpha / beta are the paper's alpha_in-out / beta_in-out.
SWEEP_KEYS = {
    "oe": ("beta",),
    "energy-oe": ("m-in", "m-out", "energy-weight"),
    "rotation": ("rotation-weight",),
    "mixupoe": ("alpha", "beta", "alpha-in-in", "beta-in-in", "beta-out"),
}
# Validation metrics a selection may maximise (fpr95: minimise); aupr is AUPR-out, the paper's.
# Default tolerance, in percentage points of ID validation accuracy. The paper keeps
# hyperparameters whose "ID classification accuracy is minimally affected" without a number; its
# chosen values cost at most 0.9 points of test accuracy against the standard model in 14 of the
# 15 fine-tuned settings of Table 6 (Dog's MixupOE: 1.4). The OE code's validation mode
# (hendrycks/outlier-exposure CIFAR/test.py --validate) prints the metrics and sets no threshold.
DEFAULT_TOLERANCE = 1.0
SELECT_METRICS = {"aupr": "aupr_out", "auroc": "auroc", "fpr95": "fpr95"}  # --select-metric -> the metric's key
METRIC_LABELS = {"accuracy": "ID val accuracy", "auroc": "AUROC", "aupr": "AUPR", "fpr95": "FPR95"}
VAL = "val"  # the validation outliers' name in the evaluations


def point_name(point: dict[str, float]) -> str:
    """The point's folder name, e.g. ``alpha=0.4,beta=5.0`` (repr: exact, never two points one name)."""
    return ",".join(f"{key}={value!r}" for key, value in point.items())


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _cell(row: dict, metric: str) -> str:
    """A validation value in %, with `` ± std`` for a point of several runs (--seeds)."""
    std = row.get("std")
    return _percent(row["validation"][metric]) + (f" ± {100 * std[metric]:.1f}" if std else "")


def _test_cell(row: dict, name: str | None, metric: str) -> str:
    """A test value in % (``name`` None: the ID test accuracy), with `` ± std`` over several runs."""
    def value(test):
        return test["id_accuracy"] if name is None else test["metrics"][name][metric]

    std = row["test"].get("std")
    return _percent(value(row["test"])) + (f" ± {100 * value(std):.1f}" if std else "")


def _std_repr(row: dict, metric: str) -> str:
    return repr(row["std"][metric]) if row.get("std") else ""


def _test_columns(summary: dict) -> list[tuple[str, str]]:
    """(set, metric) of the test columns."""
    if not summary["test"]:
        return []
    names = list(summary["points"][0]["test"]["metrics"])
    return [(name, metric) for name in names for metric in SELECT_METRICS]


def grid_csv(summary: dict) -> str:
    """One row per point (and the baseline): the grid values, the validation columns, the test
    columns; with several seeds the values are means and ``*_std`` columns follow."""
    keys = list(summary["grid"])
    tests = _test_columns(summary)
    seeds = bool(summary.get("seeds"))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["point", *keys, *(f"val_{m}" for m in ("accuracy", *SELECT_METRICS)), "eligible", "selected",
                     *(["test_id_accuracy"] if tests else []), *(f"test_{name}_{metric}" for name, metric in tests),
                     *([*(f"val_{m}_std" for m in ("accuracy", *SELECT_METRICS)), "runs"] if seeds else []),
                     *(f"test_{name}_{metric}_std" for name, metric in tests if seeds)])
    selection = summary["selection"]
    rows = ([summary["baseline"]] if summary["baseline"] else []) + summary["points"]
    for row in rows:
        is_point = row["name"] != "baseline"
        writer.writerow([
            row["name"], *(repr(row["point"][k]) if is_point else "" for k in keys),
            *(repr(row["validation"][m]) for m in ("accuracy", *SELECT_METRICS)),
            int(row["name"] in selection["eligible"]) if is_point else "", int(row["name"] == selection["selected"]) if is_point else "",
            *([repr(row["test"]["id_accuracy"])] if tests else []),
            *(repr(row["test"]["metrics"][name][metric]) for name, metric in tests),
            *([*(_std_repr(row, m) for m in ("accuracy", *SELECT_METRICS)), len(row.get("runs", [None]))] if seeds else []),
            *((repr(row["test"]["std"]["metrics"][name][metric]) if row["test"].get("std") else "")
              for name, metric in tests if seeds),
        ])
    return buffer.getvalue()


def _matrix(summary: dict, cell) -> list[str]:
    """A 2-D grid as Table 4 lays it out: the first key's values down, the second's across; the
    selected point in bold."""
    (row_key, row_values), (column_key, column_values) = summary["grid"].items()
    by_point = {(r["point"][row_key], r["point"][column_key]): r for r in summary["points"]}
    lines = [f"| {row_key} \\ {column_key} | " + " | ".join(f"{v:g}" for v in column_values) + " |",
             "|---|" + "---|" * len(column_values)]
    for a in row_values:
        cells = []
        for b in column_values:
            row = by_point[(a, b)]
            text = cell(row)
            cells.append(f"**{text}**" if row["name"] == summary["selection"]["selected"] else text)
        lines.append(f"| {a:g} | " + " | ".join(cells) + " |")
    return lines


def sweep_markdown(summary: dict) -> str:
    settings, selection = summary["settings"], summary["selection"]
    keys = list(summary["grid"])
    two_d = len(keys) == 2
    first = summary["points"][0]["validation"]
    record = first["id_validation"]
    lines = [
        f"# {settings['method']} hyperparameter sweep on {settings['benchmark']['name']}",
        "",
        f"Selected: **{point_name(selection['point'])}** (`{selection['checkpoint']}`).",
        "",
        f"Rule: {selection['rule']} (metric {selection['metric']}, tolerance {selection['tolerance_points']:g} point{'' if selection['tolerance_points'] == 1 else 's'}; "
        f"reference accuracy ({selection.get('reference', 'best point')}) {_percent(selection['reference_accuracy'])}%; eligible: {len(selection['eligible'])} of "
        f"{plural(len(summary['points']), 'point')}).",
        *(["", f"WARNING: {selection['warning']}."] if selection["warning"] else []),
        "",
        "## Validation (used for the selection)",
        "",
        f"{first['counts'][VAL]} validation outliers ({len(first['per_kind'])} kinds: {', '.join(first['per_kind'])}) against "
        f"{first['counts']['id_val']} ID validation images ({record['source']}"
        + (f", seed {record['seed']}; every model here was trained without them" if record.get("seed") is not None else "")
        + f"). {summary['validation_protocol']}. Values in %.",
    ]
    if summary.get("seeds"):
        seeds = summary["seeds"]
        lines += ["", f"Each point (and a baseline trained here): the mean ± sample standard deviation over {len(seeds)} "
                  f"training runs, seeds {seeds[0]} to {seeds[-1]}; the selection reads the means."]
    columns = ("accuracy", *SELECT_METRICS)
    if two_d:
        for metric in columns:
            lines += ["", f"### {METRIC_LABELS[metric]}", "", *_matrix(summary, lambda r, m=metric: _cell(r, m))]
    lines += ["", "### All points", "",
              "| point | " + " | ".join(METRIC_LABELS[m] for m in columns) + " | eligible | selected |",
              "|---|" + "---|" * (len(columns) + 2)]
    rows = ([summary["baseline"]] if summary["baseline"] else []) + summary["points"]
    for row in rows:
        name = "baseline (the standard model fine-tuned from)" if row["name"] == "baseline" else row["name"]
        flags = ("", "") if row["name"] == "baseline" else (
            "yes" if row["name"] in selection["eligible"] else "no", "**yes**" if row["name"] == selection["selected"] else "")
        lines.append(f"| {name} | " + " | ".join(_cell(row, m) for m in columns) + f" | {flags[0]} | {flags[1]} |")
    if summary["test"]:
        lines += _test_markdown(summary, rows, two_d)
    return "\n".join(lines) + "\n"


def _test_markdown(summary: dict, rows: list[dict], two_d: bool) -> list[str]:
    test = summary["test"]
    names = list(summary["points"][0]["test"]["metrics"])
    lines = ["", "## Test OOD sets (analysis only: evaluated after the selection, never used by it)", "",
             f"ID test images against {', '.join(names)}. {test['protocol_text']} Values in %."]
    if two_d:
        for metric in SELECT_METRICS:
            lines += ["", f"### {METRIC_LABELS[metric]}: {' / '.join(names)} (Table 4 layout)", "",
                      *_matrix(summary, lambda r, m=metric: " / ".join(_test_cell(r, n, m) for n in names))]
    lines += ["", "### All points", "",
              "| point | ID test accuracy | " + " | ".join(f"{n} {METRIC_LABELS[m]}" for n in names for m in SELECT_METRICS) + " |",
              "|---|---|" + "---|" * (len(names) * len(SELECT_METRICS))]
    for row in rows:
        cells = [_test_cell(row, n, m) for n in names for m in SELECT_METRICS]
        lines.append(f"| {row['name']} | {_test_cell(row, None, '')} | " + " | ".join(cells) + " |")
    return lines


def heatmaps(summary: dict, figure_format: FigureFormat | None = None) -> dict[str, bytes]:
    """Heat maps of a 2-D grid: one per validation metric (heatmap-val-METRIC.png) and, with
    --evaluate-test, per test set and metric (heatmap-test-SET-METRIC.png); the selected point framed.
    Each in the formats of ``figure_format`` (a tools.figures.FigureFormat; None: PNG at 120 dpi)."""
    if len(summary["grid"]) != 2:
        return {}
    figures = {f"heatmap-val-{m}": (lambda r, m=m: r["validation"][m], f"validation {METRIC_LABELS[m]}", m)
               for m in ("accuracy", *SELECT_METRICS)}
    if summary["test"]:
        for name in summary["points"][0]["test"]["metrics"]:
            figures.update({f"heatmap-test-{name}-{m}": (lambda r, n=name, m=m: r["test"]["metrics"][n][m],
                                                         f"test {name} {METRIC_LABELS[m]} (not used for selection)", m)
                            for m in SELECT_METRICS})
    files = {}
    for stem, (value, title, metric) in figures.items():
        files.update(_heatmap(summary, value, title, metric, stem, figure_format))
    return files


def _heatmap(summary: dict, value, title: str, metric: str, stem: str,
             figure_format: FigureFormat | None = None) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    (row_key, row_values), (column_key, column_values) = summary["grid"].items()
    by_point = {(r["point"][row_key], r["point"][column_key]): r for r in summary["points"]}
    matrix = np.array([[100 * value(by_point[(a, b)]) for b in column_values] for a in row_values])
    fig, ax = plt.subplots(figsize=(1.2 * len(column_values) + 2.4, 0.8 * len(row_values) + 1.6), dpi=120)
    lower_is_better = metric == "fpr95"  # the better cells bright either way
    image = ax.imshow(matrix, cmap="viridis_r" if lower_is_better else "viridis", aspect="auto")
    for i, j in itertools.product(range(len(row_values)), range(len(column_values))):
        ax.text(j, i, f"{matrix[i, j]:.1f}", ha="center", va="center", fontsize=9,
                color="white" if (image.norm(matrix[i, j]) < 0.5) != lower_is_better else "black")
    chosen = summary["selection"]["point"]
    i, j = row_values.index(chosen[row_key]), column_values.index(chosen[column_key])
    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="tab:red", linewidth=2.5))
    ax.set_xticks(range(len(column_values)), [f"{v:g}" for v in column_values])
    ax.set_yticks(range(len(row_values)), [f"{v:g}" for v in row_values])
    ax.set_xlabel(column_key)
    ax.set_ylabel(row_key)
    ax.set_title(f"{summary['settings']['benchmark']['name']} {summary['settings']['method']}: {title} (%)", fontsize=9)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return render_figure(fig, stem, figure_format or FigureFormat())


def selection_lines(summary: dict, out: Path) -> list[str]:
    """What the command prints on stderr after the table."""
    selection = summary["selection"]
    lines = [f"selected {point_name(selection['point'])}: {Path(out) / selection['checkpoint']}",
             f"rule: {selection['rule']}",
             f"files in {out}: grid.md, grid.csv, selected.json, results.json"
             + (", heatmap-* (figures)" if len(summary["grid"]) == 2 else "")]
    if selection["warning"]:
        lines.insert(0, f"warning: {selection['warning']}")
    return lines
