"""The evaluation protocol (evaluate --protocol / --metrics), the paper's tables as data, and report --paper."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from conftest import run_cli
from fgood_bench.cli import build_parser
from fgood_bench.errors import FgoodError
from fgood_bench.evaluation.paper import lookup, paper_values
from fgood_bench.evaluation.protocol import is_paper_protocol, metric_convention
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.metrics import CONVENTIONS, ood_metrics
from fgood_bench.tools.models import build_model, save_classifier
from fgood_bench.tools.settings import resolve_protocol

# Cells read by hand from the paper's text: (table, benchmark, method, training, OOD set, metric) -> (value, std)
HAND_READ = {
    ("5", "bird", "mixupoe", "fine-tune", "holdout", "fpr95"): (29.0, 1.2),
    ("5", "bird", "mixupoe", "fine-tune", "holdout", "auroc"): (93.3, 0.2),
    ("5", "bird", "mixupoe", "fine-tune", "holdout", "aupr"): (73.1, 0.7),
    ("5", "dog", "oe", "fine-tune", "textures", "fpr95"): (27.7, 11.0),
    ("5", "flower", "gram", "", "holdout", "fpr95"): (12.3, 1.7),
    ("5", "car", "rotation", "", "textures", "auroc"): (100.0, 0.0),
    ("5", "car", "msp", "", "lsun", "aupr"): (95.2, 0.9),
    ("5", "aircraft", "energy-oe", "scratch", "holdout", "aupr"): (28.9, 3.0),
    ("5", "aircraft", "odin", "", "places365", "fpr95"): (3.8, 0.7),
    ("1", "flower", "msp", "", "holdout", "aupr"): (83.6, 2.5),
    ("1", "car", "rotation", "", "holdout", "aupr"): (67.8, 0.1),  # Table 5 prints 77.8 ± 0.8 for this cell
    ("1", "aircraft", "energy-oe", "fine-tune", "places365", "aupr"): (99.6, 0.1),
    ("6", "dog", "standard", "", "", "accuracy"): (86.2, 0.2),
    ("6", "car", "mixupoe", "scratch", "", "accuracy"): (98.2, 0.1),
    ("6", "aircraft", "energy-oe", "scratch", "", "accuracy"): (89.6, 1.3),
    ("7", "inet-a", "energy-oe", "fine-tune", "places365", "fpr95"): (21.9, 0.5),
    ("7", "inet-a", "energy-oe", "fine-tune", "places365", "aupr"): (81.5, 1.7),
    ("7", "inet-a", "gram", "", "lsun", "fpr95"): (98.1, 2.1),
    ("7", "inet-b", "mixupoe", "fine-tune", "holdout", "fpr95"): (51.3, 1.3),
    ("7", "inet-b", "mahalanobis", "", "textures", "auroc"): (91.1, 0.2),
    ("8", "inet-a", "mixupoe", "fine-tune", "", "accuracy"): (80.2, 0.6),
    ("8", "inet-b", "rotation", "fine-tune", "", "accuracy"): (81.0, 0.6),
}


def resolve(protocol, base_rate, convention):
    return resolve_protocol(protocol, base_rate, convention)[:2]


def test_shipped_values_equal_the_paper_text():
    values = {(v.table, v.benchmark, v.method, v.training, v.ood_set, v.metric): v for v in paper_values()}
    for key, (value, std) in HAND_READ.items():
        assert (values[key].value, values[key].std) == (value, std), key
    counts = {t: sum(v.table == t for v in paper_values()) for t in "15678"}
    # 8 methods x 10 columns; 5 benchmarks x 12 rows x 12; 5 x 8; 2 x 9 rows x 12 less the cell the text lacks; 2 x 5
    assert counts == {"1": 80, "5": 720, "6": 40, "7": 213, "8": 10}
    assert all(v.row and v.column for v in paper_values())
    assert values[("5", "dog", "oe", "fine-tune", "holdout", "aupr")].source() == \
        "Table 5, row Dog / OE (fine-tune) [11], column holdout, AUPR"
    assert "77.8±0.8" in values[("1", "car", "rotation", "", "holdout", "aupr")].note


def test_shipped_inet_values_give_section_5_5_averages():
    # Section 5.5: "averaged over the four OOD test sets, the AUPR performances (%) for OE / EnergyOE / MixupOE are:
    # 51.1 / 63.0 / 54.4 on the INet-A benchmark; and 49.7 / 67.6 / 57.2 on the INet-B benchmark"
    stated = {"inet-a": (51.1, 63.0, 54.4), "inet-b": (49.7, 67.6, 57.2)}
    for benchmark, averages in stated.items():
        for method, average in zip(("oe", "energy-oe", "mixupoe"), averages):
            cells = [lookup(benchmark, method, "fine-tune", "aupr", s).value for s in ("textures", "lsun", "places365", "holdout")]
            assert abs(np.mean(cells) - average) <= 0.05 + 1e-9, (benchmark, method)


def test_protocol_resolution():
    assert resolve("paper", None, None) == (5.0, "paper")
    assert resolve("paper", 5.0, "paper") == (5.0, "paper")
    assert resolve(None, None, None) == (None, "paper")
    assert resolve(None, 3.0, "openood") == (3.0, "openood")
    with pytest.raises(FgoodError, match="--protocol paper evaluates at ID:OOD = 5:1 .* --base-rate 2 contradicts it"):
        resolve("paper", 2.0, None)
    with pytest.raises(FgoodError, match="--metrics openood contradicts it"):
        resolve("paper", None, "openood")
    # results.json written before conventions had names: known by the convention's text
    legacy = {"convention": CONVENTIONS["paper"], "base_rate": {"id_to_ood": 5.0, "repeats": 10, "seed": 0}}
    assert metric_convention(legacy) == "paper" and is_paper_protocol(legacy)
    assert metric_convention({"convention": "ID positive"}) == "unknown"
    evaluate = build_parser()._subparsers._group_actions[0].choices["evaluate"]
    metrics = next(a for a in evaluate._actions if a.dest == "metrics")
    assert list(metrics.choices) == list(CONVENTIONS)


def results_json(folder: Path, *, seed: int, base_rate=None, convention="paper", method="standard", fine_tuned=False,
                 holdout_fpr95=0.341, places_aupr=0.943) -> Path:
    """A results.json as evaluate writes it, for bird with MSP and MaxLogit on holdout and places365."""
    def entry(**values):
        defaults = {"fpr95": 0.072, "auroc": 0.986, "aupr_out": places_aupr, "aupr_in": 0.99}
        metrics = {**defaults, **values}
        if base_rate is None:
            return metrics
        return {m: {"mean": v, "std": 0.001} for m, v in metrics.items()} | {"base_rate": base_rate, "n_id": 50, "n_ood": 10}

    results = {
        "toolkit": "fgood-bench test", "protocol": "paper" if base_rate == 5.0 and convention == "paper" else "custom",
        "metric_convention": convention, "convention": CONVENTIONS[convention],
        "base_rate": {"id_to_ood": base_rate, "repeats": 10, "seed": seed} if base_rate else "none: all images of each set",
        "metrics_reported": ["fpr95", "auroc", "aupr_out", "aupr_in"],
        "benchmark": {"name": "bird", "manifest_sha256": "0" * 64}, "checkpoint_sha256": f"{seed + 1}" * 64,
        "training": {"method": method, "fine_tuned": fine_tuned},
        "id_accuracy": 0.95 + 0.002 * seed, "scorers": ["msp", "maxlogit"],
        "metrics": {
            "holdout": {"msp": entry(fpr95=holdout_fpr95 + 0.01 * seed, auroc=0.914, aupr_out=0.676 + 0.003 * seed),
                        "maxlogit": entry()},
            "places365": {"msp": entry(), "maxlogit": entry()},
        },
    }
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def table_line(out: str, ood_set: str, metric: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(f"| {ood_set} | ") and f"| {metric}" in line)


def test_report_paper_marks_a_disagreement(tmp_path, capsys):
    # holdout FPR95 of 60% against the paper's 34.1 ± 1.0 (Table 5, Bird / MSP): far beyond two standard deviations
    runs = [results_json(tmp_path / f"s{seed}", seed=seed, base_rate=5.0, holdout_fpr95=0.60) for seed in (0, 1)]
    status, out, err = run_cli("report", *runs, "--paper", "--out", tmp_path / "report", capsys=capsys)
    assert status == 0, err
    assert "Protocol: the paper's (Appendix C)" in out
    disagreeing = table_line(out, "holdout", "FPR95")
    assert "| 60.5 ± 0.5 | 34.1 ± 1.0 | +26.4 | ✗ | Table 5, row Bird / MSP [3], column holdout, FPR95 |" in disagreeing
    agreeing = table_line(out, "holdout", "AUPR")  # 67.75 ± 0.15 against 67.6 ± 0.3
    assert "| 67.8 ± 0.2 | 67.6 ± 0.3 | +0.2 |  |" in agreeing
    assert "| ID test | Standard | accuracy ↑ | 95.1 ± 0.1 | 95.0 ± 0.2 | +0.1 |  | Table 6, row Bird, column Standard |" in out
    assert "No paper value for: maxlogit on holdout, maxlogit on places365." in out
    assert (tmp_path / "report" / "paper.md").read_text() in out
    assert "✗" not in table_line(out, "places365", "AUPR")  # 94.3 against 94.3 ± 1.0


def test_report_paper_matches_method_and_training(tmp_path, capsys):
    # an MSP score of a fine-tuned MixupOE model is Table 5's MixupOE (fine-tune) row, and Table 6's accuracy
    run = results_json(tmp_path / "mixup", seed=0, base_rate=5.0, method="mixupoe", fine_tuned=True)
    status, out, err = run_cli("report", run, "--paper", capsys=capsys)
    assert status == 0, err
    assert "Table 5, row Bird / MixupOE (fine-tune), column holdout, FPR95" in table_line(out, "holdout", "FPR95")
    assert "Table 6, row Bird, column MixupOE, fine-tune" in out
    assert "Note:" not in out


def test_report_paper_notes_feature_layers_other_than_the_papers(tmp_path, capsys):
    """Appendix D.2 reads every residual block; the default reads the stages: said beside the table."""
    run = results_json(tmp_path / "stages", seed=0, base_rate=5.0)
    results = json.loads((run / "results.json").read_text())
    results["settings"] = {"model": {"arch": "resnet50"}, "scorers": {"mahalanobis": {"feature_layers": "stages"}}}
    (run / "results.json").write_text(json.dumps(results))
    status, out, err = run_cli("report", run, "--paper", capsys=capsys)
    assert status == 0, err
    assert "Note: mahalanobis read the four stage outputs here (--feature-layers stages)" in out


@pytest.mark.parametrize("setting", [{"base_rate": None}, {"base_rate": 5.0, "convention": "openood"}, {"base_rate": 2.0}])
def test_report_paper_refuses_other_protocols(setting, tmp_path, capsys):
    run = results_json(tmp_path / "run", seed=0, **setting)
    status, out, err = run_cli("report", run, "--paper", "--out", tmp_path / "report", capsys=capsys)
    assert status == 2 and out == ""
    assert err.strip() == ("fgood-bench: error: report --paper: these runs were not evaluated with the paper's protocol "
                           "(ID:OOD = 5:1, metric convention `paper`, Appendix C); evaluate them with --protocol paper")
    assert not (tmp_path / "report").exists()
    # without --paper the report states the protocol, so its table is not compared with the paper by mistake
    status, out, _ = run_cli("report", run, capsys=capsys)
    assert status == 0 and "Protocol: NOT the paper's" in out


def test_report_refuses_mixed_training(tmp_path, capsys):
    runs = [results_json(tmp_path / "a", seed=0, base_rate=5.0),
            results_json(tmp_path / "b", seed=1, base_rate=5.0, method="oe", fine_tuned=True)]
    status, _, err = run_cli("report", *runs, capsys=capsys)
    assert status == 2 and "its training differs" in err


@pytest.fixture(scope="module")
def setting(dozen_birds, bird_benchmark):
    """The bird benchmark (K=8) with a Places365 OOD set, and a tiny ResNet-18 checkpoint of its ID classes."""
    base, places = bird_benchmark["base"], bird_benchmark["places"]
    torch.manual_seed(0)
    names = Manifest.load(base / "out" / "bird").id_class_names
    save_classifier(base / "protocol-ck.pt", build_model("resnet18", 8), "resnet18", names)
    return {"base": base, "root": dozen_birds, "places": places}


def evaluate(setting, out, *extra, capsys):
    base = setting["base"]
    return run_cli("evaluate", "--checkpoint", base / "protocol-ck.pt", "--manifest", base / "out" / "bird", "--root",
                   setting["root"], "--ood", "holdout", "--ood", f"places365={base / 'out' / 'places365'}", "--ood-root",
                   f"places365={setting['places']}", "--out", out, "--image-size", "32", "--workers", "0", "--scorers",
                   "msp,energy", *extra, capsys=capsys)


def test_evaluate_protocol_and_metrics(setting, tmp_path, capsys):
    status, out, err = evaluate(setting, tmp_path / "paper", "--protocol", "paper", "--repeats", "2", capsys=capsys)
    assert status == 0, err
    results = json.loads((tmp_path / "paper" / "results.json").read_text())
    assert (results["protocol"], results["metric_convention"]) == ("paper", "paper")
    assert results["base_rate"] == {"id_to_ood": 5.0, "repeats": 2, "seed": 0}
    assert results["training"] == {"method": None, "fine_tuned": False}
    assert "Protocol: the paper's (Appendix C): ID:OOD = 5:1 (2 seeded draws)" in out
    assert "Protocol: the paper's" in (tmp_path / "paper" / "results.md").read_text()

    status, out, err = evaluate(setting, tmp_path / "openood", "--metrics", "openood", capsys=capsys)
    assert status == 0, err
    results = json.loads((tmp_path / "openood" / "results.json").read_text())
    assert (results["protocol"], results["metric_convention"]) == ("custom", "openood")
    assert results["convention"] == CONVENTIONS["openood"]
    scores = pq.read_table(tmp_path / "openood" / "scores.parquet")
    sets, energy = np.array(scores.column("set").to_pylist()), scores.column("energy").to_numpy()
    assert results["metrics"]["holdout"]["energy"] == ood_metrics(energy[sets == "id"], energy[sets == "holdout"], "openood")
    assert "Protocol: NOT the paper's (all images of each set, metric convention `openood`)" in out

    status, _, err = evaluate(setting, tmp_path / "bad", "--protocol", "paper", "--base-rate", "3", capsys=capsys)
    assert status == 2 and "--base-rate 3 contradicts it" in err and not (tmp_path / "bad").exists()
