"""Write fgood_bench/evaluation/resources/paper_tables.csv from the text of the paper.

The paper's result tables as data: Table 1 (AUPR), Table 5 (FPR95 / AUROC / AUPR, fine-grained),
Table 6 (ID accuracy), Table 7 (FPR95 / AUROC / AUPR, INet-A/B) and Table 8 (INet accuracy).
Each value keeps the table, the row and the column it was read from. Run it on the text
extraction of "Fine-grained OOD Detection with Mixup Outlier Exposure" (arXiv 2106.03917):

    python scripts/paper_tables.py PAPER.txt > fgood_bench/evaluation/resources/paper_tables.csv

The text extraction drops one cell of Table 7 (INet-B / MSP prints three of four cells): the
three are assigned to Textures, LSUN and Places365 in order and carry a note.
"""

from __future__ import annotations

import csv
import re
import sys

BENCHMARKS = {"Bird": "bird", "Dog": "dog", "Flower": "flower", "Car": "car", "Aircraft": "aircraft",
              "INet-A": "inet-a", "INet-B": "inet-b"}
METHODS = {"MSP": "msp", "ODIN*": "odin", "Energy": "energy", "Mahalanobis*": "mahalanobis", "Gram Matrices*": "gram",
           "Rotation": "rotation", "OE": "oe", "EnergyOE": "energy-oe", "MixupOE": "mixupoe", "Standard": "standard"}
OOD_COLUMNS = ("Textures", "LSUN", "Places365", "holdout")
DETECTION_METRICS = (("fpr95", "FPR95"), ("auroc", "AUROC"), ("aupr", "AUPR"))
NUMBER = r"(\d+\.\d)\s*(?:±|\\pm)\s*(\d+\.\d)"
FIELDS = ("table", "benchmark", "method", "training", "ood_set", "metric", "value", "std", "row", "column", "note")


def _lines_between(text: str, start: str, end: str) -> list[str]:
    block = text[text.index(start): text.index(end, text.index(start))]
    return block.splitlines()[1:]


def _method(label: str) -> tuple[str, str]:
    """('oe', 'fine-tune') from 'OE (<i>fine-tune</i>) [11]'."""
    training = re.search(r"(fine-tune|scratch)", label)
    name = re.sub(r"\(.*?\)|\[\d+\]|<.*?>", "", label).strip()
    return METHODS[name], training.group(1) if training else ""


def table1(text: str):
    columns = [(b, s) for b in ("Bird", "Dog", "Flower", "Car", "Aircraft") for s in ("Places365", "holdout")]
    for line in _lines_between(text, "Table 1:", "datasets. Importantly"):
        fields = line.split("\t")
        cells = re.findall(NUMBER, line)
        if len(cells) != 10:
            continue
        label = fields[0].strip()
        method, _ = _method(label)
        # Table 1's OE and EnergyOE are the fine-tuned models (equal to Table 5's fine-tune rows)
        training = "fine-tune" if method in ("oe", "energy-oe") else ""
        for (bench, ood), (value, std) in zip(columns, cells):
            yield dict(table="1", benchmark=BENCHMARKS[bench], method=method, training=training, ood_set=ood.lower(),
                       metric="aupr", value=value, std=std, row=label, column=f"{bench}, {ood}")


def detection_table(text: str, table: str, start: str, end: str, last_column: str):
    benchmark = None
    for line in _lines_between(text, start, end):
        fields = [f.strip() for f in line.split("\t") if f.strip()]
        cells = re.findall(NUMBER, line)
        if not cells:
            continue
        labels = [f for f in fields if not re.match(r"^\d", f)]
        if labels and labels[0] in BENCHMARKS:
            benchmark, labels = labels[0], labels[1:]
        label = labels[0]
        method, training = _method(label)
        if table == "7" and method in ("oe", "energy-oe", "mixupoe", "rotation"):
            training = "fine-tune"  # Table 7's caption and Appendix H.2
        note = ""
        if len(cells) == 9:
            note = ("the paper's text prints three of this row's four cells; read as Textures, LSUN, Places365 "
                    "(the INet-A cell is missing)")
        elif len(cells) != 12:
            raise SystemExit(f"table {table}: cannot read {line!r}")
        for index, (value, std) in enumerate(cells):
            ood = OOD_COLUMNS[index // 3]
            metric, metric_label = DETECTION_METRICS[index % 3]
            column = last_column if ood == "holdout" else ood
            yield dict(table=table, benchmark=BENCHMARKS[benchmark], method=method, training=training,
                       ood_set=ood.lower(), metric=metric, value=value, std=std, row=f"{benchmark} / {re.sub(r'</?i>', '', label)}",
                       column=f"{column}, {metric_label}", note=note)


def accuracy_table(text: str, table: str, start: str, end: str, columns: list[tuple[str, str]]):
    for line in _lines_between(text, start, end):
        fields = [f.strip() for f in line.split("\t") if f.strip()]
        cells = re.findall(NUMBER, line)
        if not cells or fields[0] not in BENCHMARKS:
            continue
        if len(cells) != len(columns):
            raise SystemExit(f"table {table}: cannot read {line!r}")
        for (label, training), (value, std) in zip(columns, cells):
            method, _ = _method(label)
            yield dict(table=table, benchmark=BENCHMARKS[fields[0]], method=method, training=training, ood_set="",
                       metric="accuracy", value=value, std=std, row=fields[0],
                       column=label + (f", {training}" if training else ""))


def _note_table1_differences(rows: list[dict]) -> None:
    """Appendix E calls Table 5 the source of Table 1, yet a few of Table 1's cells differ from it."""
    key = lambda r: (r["benchmark"], r["method"], r["training"], r["ood_set"])
    table5 = {key(r): r for r in rows if r["table"] == "5" and r["metric"] == "aupr"}
    for row in rows:
        source = table5.get(key(row)) if row["table"] == "1" else None
        if source and (source["value"], source["std"]) != (row["value"], row["std"]):
            row["note"] = f"Table 5 ({source['row']}, {source['column']}) prints {source['value']}±{source['std']}"


def main() -> None:
    text = open(sys.argv[1], encoding="utf-8").read()
    table6 = [("Standard", ""), ("Rotation", ""), ("OE", "fine-tune"), ("OE", "scratch"), ("EnergyOE", "fine-tune"),
              ("EnergyOE", "scratch"), ("MixupOE", "fine-tune"), ("MixupOE", "scratch")]
    table8 = [("Standard", ""), ("Rotation", "fine-tune"), ("OE", "fine-tune"), ("EnergyOE", "fine-tune"),
              ("MixupOE", "fine-tune")]
    rows = [*table1(text),
            *detection_table(text, "5", "Table 5:", "Table 6:", "holdout"),
            *accuracy_table(text, "6", "Table 6:", "F Additional plots", table6),
            *detection_table(text, "7", "Table 7:", "Table 8:", "INet-B/A"),
            *accuracy_table(text, "8", "Table 8:", "I Potential", table8)]
    _note_table1_differences(rows)
    writer = csv.DictWriter(sys.stdout, FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


if __name__ == "__main__":
    main()
