"""study random-splits: three tiny splits end to end with the existing train and evaluate, and a
killed study that continues with the splits not done."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from fgood_bench.study import random_splits

TINY = ["--arch", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size", "8", "--workers", "0", "--epochs", "1"]


def study_args(root, out, *extra):
    return ["study", "random-splits", "bird", "--root", root, "--out", out, "--num-id", "4", "--splits", "3", "--seed", "7",
            *TINY, *extra]


@pytest.mark.slow
def test_three_splits_end_to_end_resume_after_a_kill_and_the_ranked_split(dozen_birds, bird_benchmark, tmp_path, capsys,
                                                                         monkeypatch):
    # A study killed while evaluating its second split...
    real_evaluate = __import__("fgood_bench.evaluation.evaluate", fromlist=["evaluate"]).evaluate
    real_train = __import__("fgood_bench.training.train", fromlist=["train"]).train
    evaluated, trained = [], []

    def dying_evaluate(request):
        evaluated.append(request.manifest.parent.name)
        if evaluated == ["split-00", "split-01"]:
            raise KeyboardInterrupt
        return real_evaluate(request)

    monkeypatch.setattr("fgood_bench.evaluation.evaluate.evaluate", dying_evaluate)
    monkeypatch.setattr("fgood_bench.training.train.train", lambda request: trained.append(request.manifest) or real_train(request))
    status, _, _ = run_cli(*study_args(dozen_birds, tmp_path), capsys=capsys)
    assert status == 130 and not (tmp_path / "results.json").exists()
    assert (tmp_path / "splits" / "split-00" / "result.json").exists()
    assert not (tmp_path / "splits" / "split-01" / "result.json").exists()
    # ... continues with the splits not done when run again.
    evaluated.clear()
    trained.clear()
    status, out, err = run_cli(*study_args(dozen_birds, tmp_path), capsys=capsys)
    assert status == 0, err
    assert evaluated == ["split-01", "split-02"]  # split-01's finished training resumes at its end, split-00 is not redone
    assert [m.parent.name for m in trained] == ["split-01", "split-02"]

    summary = json.loads((tmp_path / "results.json").read_text())
    rows = summary["splits"]
    assert [r["split"] for r in rows] == ["split-00", "split-01", "split-02"]
    for i, row in enumerate(rows):  # the classes drawn from default_rng([seed, i])
        drawn = sorted(np.random.default_rng([7, i]).choice(12, 4, replace=False).tolist())
        assert row["id_classes"] == [f"Bird_{c + 1}" for c in drawn]
        manifest = json.loads((tmp_path / "splits" / row["split"] / row["split"] / "manifest.json").read_text())
        assert [c["index"] for c in manifest["id_classes"]] == drawn and manifest["selection"] == "given"
        results = json.loads((tmp_path / "splits" / row["split"] / "eval" / "results.json").read_text())
        assert results["protocol"] == "paper"  # ID:OOD = 5:1 (Appendix C): AUPR-out is not saturated by the class imbalance
        assert row["aupr"] == results["metrics"]["holdout"]["msp"]["aupr_out"]["mean"] and row["accuracy"] == results["id_accuracy"]
        assert results["counts"] == {"id_test": 16, "holdout": 32}
    aupr = [r["aupr"] for r in rows]
    assert summary["spread"]["aupr"] == pytest.approx({"min": min(aupr), "max": max(aupr), "mean": np.mean(aupr),
                                                        "std": np.std(aupr, ddof=1)})
    assert (tmp_path / "figure2.png").read_bytes()[:4] == b"\x89PNG"
    assert "| split | accuracy | AUROC | AUPR | FPR95 |" in out and summary["ranked"] is None
    assert (tmp_path / "results.csv").read_text().count("\n") == 4

    # The ranked benchmark of the same K added to the finished study: only it is trained.
    ranked = bird_benchmark["base"] / "k4"
    assert run_cli("build-splits", "bird", "--root", dozen_birds, "--out", ranked, "--num-id", "4", "--predictions",
                   bird_benchmark["base"] / "preds.npz", capsys=capsys)[0] == 0
    trained.clear()
    status, out, err = run_cli(*study_args(dozen_birds, tmp_path, "--ranked", ranked / "bird"), capsys=capsys)
    assert status == 0, err
    assert [m.parent.name for m in trained] == ["bird"]
    summary = json.loads((tmp_path / "results.json").read_text())
    assert summary["ranked"]["split"] == "ranked" and "| ranked |" in out and summary["splits"] == rows
    status, _, err = run_cli(*study_args(dozen_birds, tmp_path, "--lr", "0.5"), capsys=capsys)
    assert status == 2 and "was started with other settings" in err


def test_bad_arguments(dozen_birds, tmp_path, capsys):
    status, _, err = run_cli("study", "random-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "o", "--num-id", "12",
                             *TINY, capsys=capsys)
    assert status == 2 and "num_id (--num-id) 12: must be 1..11" in err and not (tmp_path / "o").exists()
    status, _, err = run_cli("study", "random-splits", "--root", dozen_birds, "--out", tmp_path / "o", *TINY, capsys=capsys)
    assert status == 2 and "name a benchmark" in err
    status, _, err = run_cli("study", "random-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "o", "--num-id", "4",
                             "--scorer", "rotation", *TINY, capsys=capsys)
    assert status == 2 and "--scorer rotation needs a model trained with" in err and not (tmp_path / "o").exists()
    assert random_splits.METRICS == ("accuracy", "auroc", "aupr", "fpr95")


def test_study_uses_the_paper_protocol_and_every_model_option_it_offers(dozen_birds, tmp_path, capsys, monkeypatch):
    """Issue 22: the study evaluates at ID:OOD = 5:1 by default (--protocol all: every image), draws
    AUROC as well as AUPR, and passes --resize-mode and --weight-decay on to training."""
    trained, evaluated = [], []

    def fake_train(request):
        trained.append(request)
        return request.out / "classifier.pt"

    def fake_evaluate(request):
        evaluated.append(request)
        entry = {"mean": 0.7, "std": 0.01} if request.requested.protocol else 0.7
        return {"id_accuracy": 0.5, "metrics": {"holdout": {"msp": {"auroc": entry, "aupr_out": entry, "fpr95": entry}}}}

    monkeypatch.setattr("fgood_bench.training.train.train", fake_train)
    monkeypatch.setattr("fgood_bench.evaluation.evaluate.evaluate", fake_evaluate)
    status, out, err = run_cli(*study_args(dozen_birds, tmp_path / "paper", "--resize-mode", "shorter", "--weight-decay", "0.0003"),
                               capsys=capsys)
    assert status == 0, err
    assert {r.config.resize_mode for r in trained} == {"shorter"} and {r.config.weight_decay for r in trained} == {0.0003}
    assert {r.requested.protocol for r in evaluated} == {"paper"}
    summary = json.loads((tmp_path / "paper" / "results.json").read_text())
    assert summary["settings"]["protocol"] == "paper" and "5:1" in summary["metric_convention"] and "ID:OOD = 5:1" in out
    assert summary["splits"][0]["auroc"] == 0.7
    evaluated.clear()
    status, _, err = run_cli(*study_args(dozen_birds, tmp_path / "all", "--protocol", "all"), capsys=capsys)
    assert status == 0, err
    assert {r.requested.protocol for r in evaluated} == {None}
    with Image.open(io.BytesIO(random_splits.figure2(summary))) as figure:  # accuracy, AUROC and AUPR panels (7 in tall)
        assert figure.size == (840, 840)
