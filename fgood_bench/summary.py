"""The short summary a command ends with, read back from what it wrote.

Summaries go to stderr: stdout keeps the command's machine-readable result (a path, a table or
JSON) so that ``$(fgood-bench build-splits ...)`` and pipes keep working.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


NEAR_TIE = 0.01  # an S(c) margin below this: another classifier could swap the two classes


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def say(lines: list[str]) -> None:
    for line in lines:
        print(line, file=sys.stderr)


def _manifest(path: Path) -> dict:
    path = Path(path)
    return json.loads((path / "manifest.json" if path.is_dir() else path).read_text(encoding="utf-8"))


def _splits(data: dict) -> str:
    return ", ".join(f"{name} {entry['count']:,}" for name, entry in data["splits"].items())


def benchmark_lines(manifest: Path) -> list[str]:
    """build-splits: K, the class counts, split sizes, the S(c) margin at the ID/holdout border."""
    data = _manifest(manifest)
    lines = [f"benchmark {data['benchmark']} ({data['dataset']['id']}): K = {data['num_id']} ID classes, "
             f"{len(data['ood_classes'])} holdout OOD classes ({data['selection']})",
             f"splits: {_splits(data)} images"]
    ranking, k = data.get("ranking", {}).get("classes", []), data["num_id"]
    from fgood_bench.ranking.scores import border_gap  # here: scipy would slow every command line's start

    margin = border_gap(ranking, k)
    if margin is not None:
        last_id, first_ood = ranking[k - 1], ranking[k]
        lines.append(f"S(c) margin at the border: {margin:.4f} (last ID class {last_id['name']!r} {last_id['score']:.4f}, "
                     f"first holdout class {first_ood['name']!r} {first_ood['score']:.4f})"
                     + ("; a near tie: another classifier could swap them" if margin < NEAR_TIE else ""))
    lines += _not_the_papers(data)
    lines.append(f"manifest: {manifest}")
    return lines


def _not_the_papers(data: dict) -> list[str]:
    """A note when the dataset copy has another class count than the paper's Table 3 gives its benchmark."""
    from fgood_bench.paper import BENCHMARKS, paper_benchmark

    preset = BENCHMARKS.get(paper_benchmark(data["benchmark"], data["dataset"]["id"]) or "")
    classes = data["dataset"].get("num_classes")
    if preset is None or classes in (None, preset.num_classes):
        return []
    return [f"note: this copy of {data['dataset']['id']} has {classes} classes, not the {preset.num_classes} of "
            f"{preset.name} in the paper's Table 3: the benchmark is not the paper's"]


def ood_set_lines(manifest: Path) -> list[str]:
    data = _manifest(manifest)
    return [f"OOD set {data['benchmark']} ({data['dataset']['id']}): {_splits(data)} images", f"manifest: {manifest}"]


def outlier_lines(manifest: Path) -> list[str]:
    """filter-outliers: images and concepts kept and removed."""
    report = _manifest(manifest)["exclusion"]
    excluded = report["excluded"]
    with_images = sum(1 for e in excluded if e["images_removed"])
    lines = [f"kept {_count(report['images_kept'], 'image')} of {_count(report['concepts_kept'], 'concept')}; removed "
             f"{_count(report['images_removed'], 'image')} of {_count(with_images, 'concept')} "
             f"({_count(len(excluded), 'concept')} excluded, {len(excluded) - with_images} of them had no image here)"]
    if "duplicates" in report:  # counted apart: these images belong to concepts that were kept
        lines.append(f"removed {report['duplicates']['images_removed']:,} more images that audit-leakage found to be "
                     "copies of test images")
    return [*lines, f"report: {Path(manifest).parent / 'report.md'}", f"manifest: {manifest}"]


def training_lines(classifier: Path) -> list[str]:
    """train: epochs, the last epoch's mean loss, the ID accuracy, where the checkpoint is."""
    import torch

    payload = torch.load(classifier, map_location="cpu", weights_only=True)
    log = Path(classifier).parent / "metrics.jsonl"
    epochs = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if '"mean_loss"' in line] if log.is_file() else []
    lines = [f"trained {payload.get('method', 'standard')} ({payload['arch']}) on {payload.get('benchmark', '?')}: "
             f"{epochs[-1]['epoch'] if epochs else 0} of {payload.get('epochs', '?')} epochs, {epochs[-1]['step'] if epochs else 0} steps"
             + (f", final mean loss {epochs[-1]['mean_loss']:.4f}" if epochs else "")]
    accuracy = payload.get("id_accuracy")
    if accuracy and accuracy.get("accuracy") is not None:
        lines.append(f"ID accuracy {100 * accuracy['accuracy']:.1f}% on {accuracy['split']} ({accuracy['images']:,} images)")
    lines += [f"checkpoint: {classifier}", f"log: {log}"]
    return lines


def evaluation_lines(results: dict, out: Path) -> list[str]:
    """evaluate (after its table on stdout): the model, the protocol, the files."""
    base = results["base_rate"]
    base_text = (f"ID:OOD = {base['id_to_ood']}:1, mean of {base['repeats']} seeded draws (seed {base['seed']})"
                 if isinstance(base, dict) else "all images of each set")
    model = results.get("model", {})
    files = sorted(p.name for p in Path(out).iterdir() if not p.name.startswith("."))
    return [f"model: {model.get('method', '?')} ({model.get('arch', '?')}), {model.get('checkpoint', '?')}",
            f"protocol: {results['convention']}; base rate: {base_text}",
            f"files in {out}: {', '.join(files)}"]
