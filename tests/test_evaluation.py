"""Scorers against hand computations, and evaluate / report / plot end to end."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from conftest import run_cli
from fgood_bench.evaluation.forward import gram_statistics
from fgood_bench.evaluation.scorers import MSP, ODIN, Energy, Gram, Mahalanobis, MaxLogit, make_scorers
from fgood_bench.errors import FgoodError
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.training.models import build_model, save_classifier

LOGITS = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 5.0, 3.0]])


def test_logit_scorers_by_hand():
    outputs = {"logits": LOGITS}
    e = np.exp(LOGITS)
    assert MSP().score(outputs) == pytest.approx((e / e.sum(1, keepdims=True)).max(1))
    scaled = np.exp(LOGITS / 1000)
    assert ODIN().score(outputs) == pytest.approx((scaled / scaled.sum(1, keepdims=True)).max(1), rel=1e-12)
    assert Energy().score(outputs) == pytest.approx(np.log(e.sum(1)))
    assert MaxLogit().score(outputs).tolist() == [2.0, 0.0, 5.0]
    assert ODIN().score({"logits": LOGITS, "odin_logits": LOGITS * 0}) == pytest.approx([1 / 3] * 3)


def test_mahalanobis_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    train = [rng.normal(size=(60, 5)), rng.normal(size=(60, 3))]
    labels = np.repeat([0, 1, 2], 20)
    train[0][labels == 1] += 2
    test = [rng.normal(size=(7, 5)), rng.normal(size=(7, 3))]
    scorer = Mahalanobis().fit({"pooled": train}, labels)
    expected = np.zeros(7)
    for features, probe in zip(train, test):
        means = [features[labels == c].mean(0) for c in range(3)]
        centred = np.concatenate([features[labels == c] - means[c] for c in range(3)])
        precision = np.linalg.pinv(np.cov(centred.T, bias=True))
        for n, x in enumerate(probe):
            expected[n] += max(-(x - m) @ precision @ (x - m) for m in means)
    assert scorer.score({"pooled": test}) == pytest.approx(expected, rel=1e-9)


def test_gram_statistics_and_deviations():
    maps = torch.tensor(np.random.default_rng(1).normal(size=(2, 3, 4, 4)), dtype=torch.float32)
    stats = gram_statistics(maps, orders=2).numpy()
    flat = maps.double().flatten(2).numpy()
    for p in (1, 2):
        rows = np.einsum("bchw,bdhw->bcd", (flat**p).reshape(2, 3, 4, 4), (flat**p).reshape(2, 3, 4, 4)).sum(2)
        assert stats[:, p - 1] == pytest.approx(np.sign(rows) * np.abs(rows) ** (1 / p), rel=1e-9)
    # one stage, one order, two channels; everything predicted as class 0
    train = np.array([[[1.0, 10.0]], [[2.0, 12.0]], [[1.5, 11.0]], [[1.2, 11.5]]])
    logits = np.tile([5.0, 0.0], (4, 1))
    scorer = Gram().fit({"gram": [train], "logits": logits}, np.zeros(4), seed=0)
    inside = np.array([[[1.5, 11.0]]])
    outside = np.array([[[100.0, 11.0]]])
    scores = scorer.score({"gram": [np.concatenate([inside, outside])], "logits": np.tile([5.0, 0.0], (2, 1))})
    assert scores[0] == 0.0 and scores[1] < 0


def test_unknown_scorer():
    with pytest.raises(FgoodError, match="unknown scorer 'softmax'; choose from msp, odin"):
        make_scorers(["msp", "softmax"])


@pytest.fixture(scope="module")
def setting(dozen_birds, bird_benchmark):
    """A bird benchmark (K=8), a Places365 OOD set, and a tiny ResNet-18 checkpoint of the 8 ID classes."""
    base, places = bird_benchmark["base"], bird_benchmark["places"]
    torch.manual_seed(0)
    names = Manifest.load(base / "out" / "bird").id_class_names
    save_classifier(base / "ck.pt", build_model("resnet18", 8), "resnet18", names)
    return {"base": base, "root": dozen_birds, "places": places, "names": names}


def evaluate_args(setting, out, *extra):
    base = setting["base"]
    return ["evaluate", "--checkpoint", base / "ck.pt", "--manifest", base / "out" / "bird", "--root", setting["root"],
            "--ood", "holdout", "--ood", f"places={base / 'out' / 'places365'}", "--ood-root", f"places={setting['places']}",
            "--out", out, "--image-size", "32", "--workers", "0", *extra]


def test_evaluate_writes_every_report(setting, tmp_path, capsys):
    status, out, err = run_cli(*evaluate_args(setting, tmp_path / "run", "--scorers", "msp,odin,energy,maxlogit,mahalanobis,gram",
                                              "--gram-orders", "2", "--plots"), capsys=capsys)
    assert status == 0, err
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["confidence.png", "interpolation.parquet", "interpolation.png", "results.csv", "results.json",
                                                       "results.md", "scores.parquet"]
    results = json.loads((run / "results.json").read_text())
    assert "OOD is the positive class" in results["convention"] and results["base_rate"] == "none: all images of each set"
    assert results["counts"] == {"id_test": 32, "holdout": 16, "places": 9}
    assert set(results["metrics"]) == {"holdout", "places"}
    assert set(results["metrics"]["holdout"]) == {"msp", "odin", "energy", "maxlogit", "mahalanobis", "gram"}
    assert 0 <= results["id_accuracy"] <= 1
    table = (run / "results.md").read_text()
    assert "| scorer | holdout | places |" in table and "| msp | " in table and out.strip() == table.strip()
    scores = pq.read_table(run / "scores.parquet")
    assert scores.column_names == ["path", "set", "label", "msp", "odin", "energy", "maxlogit", "mahalanobis", "gram"]
    assert scores.num_rows == 57
    from fgood_bench.metrics import ood_metrics

    sets = np.array(scores.column("set").to_pylist())
    msp = scores.column("msp").to_numpy()
    assert ood_metrics(msp[sets == "id"], msp[sets == "places"]) == results["metrics"]["places"]["msp"]
    assert (run / "confidence.png").read_bytes()[:4] == b"\x89PNG"


def test_base_rate_report_and_plot(setting, tmp_path, capsys):
    for seed in (0, 1):
        status, _, err = run_cli(*evaluate_args(setting, tmp_path / f"s{seed}", "--scorers", "msp,energy", "--base-rate", "5",
                                                "--repeats", "3", "--seed", str(seed)), capsys=capsys)
        assert status == 0, err
    results = json.loads((tmp_path / "s0" / "results.json").read_text())
    assert results["base_rate"] == {"id_to_ood": 5.0, "repeats": 3, "seed": 0}
    holdout = results["metrics"]["holdout"]["msp"]
    assert set(holdout["auroc"]) == {"mean", "std"} and (holdout["n_id"], holdout["n_ood"]) == (32, 6)
    status, out, _ = run_cli("report", tmp_path / "s0", tmp_path / "s1", "--out", tmp_path / "agg", capsys=capsys)
    assert status == 0 and "±" in out
    report = json.loads((tmp_path / "agg" / "report.json").read_text())
    assert report["metrics"]["places"]["energy"]["auroc"]["runs"] == 2
    status, out, _ = run_cli("plot", tmp_path / "s0", capsys=capsys)
    assert status == 0 and Path(out.strip()).name == "confidence.png"


def test_odin_perturbation_changes_scores(setting, tmp_path, capsys):
    for name, eps in (("plain", "0"), ("perturbed", "0.01")):
        assert run_cli(*evaluate_args(setting, tmp_path / name, "--scorers", "odin", "--odin-epsilon", eps), capsys=capsys)[0] == 0
    plain = pq.read_table(tmp_path / "plain" / "scores.parquet").column("odin").to_numpy()
    perturbed = pq.read_table(tmp_path / "perturbed" / "scores.parquet").column("odin").to_numpy()
    assert not np.allclose(plain, perturbed, rtol=0, atol=1e-9)


def test_bad_inputs(setting, tmp_path, capsys):
    base = setting["base"]
    save_classifier(tmp_path / "twelve.pt", build_model("resnet18", 12), "resnet18", [str(i) for i in range(12)])
    args = evaluate_args(setting, tmp_path / "x", "--scorers", "msp")
    args[2] = tmp_path / "twelve.pt"
    status, _, err = run_cli(*args, capsys=capsys)
    assert status == 2 and "classifier has 12 outputs, the dataset has 8 classes" in err
    # an OOD set drawn from the benchmark's own test images
    status, out, _ = run_cli("build-ood-set", "cub", "--root", setting["root"], "--out", tmp_path, "--split", "test", "--name", "leak",
                             capsys=capsys)
    assert status == 0
    args = evaluate_args(setting, tmp_path / "y", "--scorers", "msp")
    args[args.index(f"places={base / 'out' / 'places365'}")] = f"leak={tmp_path / 'leak'}"
    status, _, err = run_cli(*args, capsys=capsys)
    assert status == 2 and "OOD set 'leak' shares 32 images with the ID test split" in err
    broken = build_model("resnet18", 8)
    with torch.no_grad():
        broken.fc.weight.fill_(float("nan"))
    save_classifier(tmp_path / "nan.pt", broken, "resnet18", setting["names"])
    args = evaluate_args(setting, tmp_path / "z", "--scorers", "msp")
    args[2] = tmp_path / "nan.pt"
    status, _, err = run_cli(*args, capsys=capsys)
    assert status == 2 and "the msp scorer produced NaN or inf scores" in err
