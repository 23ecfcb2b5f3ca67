"""sweep: the selection rule on crafted validation results, a sweep whose points are done (no
training), bad grids, and a tiny 2 x 2 MixupOE sweep end to end that is killed and resumed."""

import csv
import json

import numpy as np
import pytest
import torch

from conftest import run_cli
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.outputs import marker_bytes
from fgood_bench.study.sweep import parse_grid, point_name, select_point

TINY = ["--arch", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size", "8", "--workers", "0", "--epochs", "1",
        "--standard-epochs", "1", "--val-ood-size", "1"]


def sweep_args(setting, out, *extra):
    base = setting["base"]
    return ["sweep", "--method", "mixupoe", "--grid", "alpha=0.4,1", "--grid", "beta=1,5", "--manifest", base / "out" / "bird",
            "--root", setting["root"], "--outliers", base / "out" / "places365", "--outlier-root", setting["places"],
            "--outlier-batch-size", "8", "--out", out, *TINY, *extra]


@pytest.fixture(scope="module")
def setting(dozen_birds, bird_benchmark):
    return {"base": bird_benchmark["base"], "root": dozen_birds, "places": bird_benchmark["places"]}


def row(name, accuracy, aupr, auroc=0.5, fpr95=0.5):
    return {"name": name, "validation": {"accuracy": accuracy, "aupr": aupr, "auroc": auroc, "fpr95": fpr95}}


def test_selection_rule_tolerance_metric_and_ties():
    rows = [row("a", 0.900, 0.70), row("b", 0.870, 0.95), row("c", 0.905, 0.80), row("d", 0.898, 0.85)]
    chosen = select_point(rows, "aupr", 1.0)  # b has the best AUPR but loses 3.5 points of accuracy
    assert chosen["selected"] == "d" and chosen["eligible"] == ["a", "c", "d"] and chosen["reference_accuracy"] == 0.905
    assert "at most 1 percentage point below the best grid point's" in chosen["rule"]
    assert select_point(rows, "aupr", 0.5)["eligible"] == ["a", "c"]  # a is exactly 0.5 points below: eligible
    assert select_point(rows, "aupr", 0.5)["selected"] == "c"
    assert select_point(rows, "aupr", 0.0)["selected"] == "c"
    assert select_point(rows, "aupr", 10.0)["selected"] == "b"
    # fpr95 is minimised
    fpr = [row("a", 0.9, 0.5, fpr95=0.30), row("b", 0.9, 0.5, fpr95=0.20), row("c", 0.9, 0.5, fpr95=0.25)]
    assert select_point(fpr, "fpr95", 1.0)["selected"] == "b"
    # ties: the higher accuracy, then the earlier point in grid order
    tied = [row("a", 0.895, 0.8), row("b", 0.900, 0.8), row("c", 0.900, 0.8), row("d", 0.900, 0.7)]
    assert select_point(tied, "aupr", 1.0)["selected"] == "b"
    assert select_point([row("x", 0.9, 0.8), row("y", 0.9, 0.8)], "auroc", 1.0)["selected"] == "x"


def test_accuracy_is_measured_against_the_standard_model_when_the_sweep_has_one():
    """Appendix D.3's "ID classification accuracy minimally affected": against the Standard model the
    points fine-tune, not against the best point (issue 23 item 4)."""
    rows = [row("a", 0.880, 0.70), row("b", 0.860, 0.95), row("c", 0.885, 0.80)]
    standard = row("baseline", 0.900, 0.5)
    chosen = select_point(rows, "aupr", 2.6, standard=standard)
    assert chosen["eligible"] == ["a", "c"] and chosen["selected"] == "c" and chosen["reference_accuracy"] == 0.900
    assert chosen["reference"] == "standard" and "the Standard model's" in chosen["rule"]
    assert select_point(rows, "aupr", 2.6)["eligible"] == ["a", "b", "c"]  # against the best point: b (2.5 below 0.885) too
    assert select_point(rows, "aupr", 0.1, standard=standard)["selected"] == "c"  # none eligible: the most accurate point


def test_kinds_are_scored_at_the_paper_base_rate():
    """Each kind of validation outliers is scored at ID:OOD = 5:1 (Appendix C), not at whatever ratio
    the set sizes give."""
    from fgood_bench.metrics import ood_metrics, ood_metrics_at_base_rate
    from fgood_bench.study.sweep import kind_metrics

    rng = np.random.default_rng(0)
    id_scores, kind_scores = rng.normal(1, 1, 300), rng.normal(0, 1, 100)
    kind = kind_metrics(id_scores, kind_scores, seed=3)
    assert kind["base_rate"] == 5.0
    assert kind["aupr_out"] == ood_metrics_at_base_rate(id_scores, kind_scores, 5.0, 10, 3)["aupr_out"]["mean"]
    assert kind["aupr_out"] != ood_metrics(id_scores, kind_scores)["aupr_out"]
    assert kind_metrics(id_scores[:3], kind_scores, seed=3)["base_rate"].startswith("none")


def test_a_one_point_rotation_sweep_runs(setting, tmp_path, capsys):
    """Every advertised method is sweepable: rotation (scored by the rotation scorer) used to be refused."""
    base = setting["base"]
    status, _, err = run_cli("sweep", "--method", "rotation", "--grid", "rotation-weight=0.5", "--manifest", base / "out" / "bird",
                             "--root", setting["root"], "--out", tmp_path / "rot", *TINY, capsys=capsys)
    assert status == 0, err
    selected = json.loads((tmp_path / "rot" / "selected.json").read_text())
    assert selected["point"] == {"rotation-weight": 0.5} and selected["reference"] == "best point"


def test_grid_keys_values_and_points():
    grid = parse_grid("mixupoe", ["alpha=0.4,1,2", "beta_in_in=0.5"])
    assert grid == [("alpha", [0.4, 1.0, 2.0]), ("beta-in-in", [0.5])]
    assert parse_grid("energy-oe", ["m-in=-20,-15"]) == [("m-in", [-20.0, -15.0])]
    assert point_name({"alpha": 0.4, "beta": 5.0}) == "alpha=0.4,beta=5.0"


@pytest.mark.parametrize("method, grid, message", [
    ("mixupoe", ["gamma=1"], "mixupoe has no hyperparameter 'gamma'; its keys are alpha, beta, alpha-in-in, beta-in-in, beta-out"),
    ("oe", ["alpha=1"], "oe has no hyperparameter 'alpha'; its keys are beta"),
    ("energy-oe", ["beta=1"], "its keys are m-in, m-out, energy-weight"),
    ("mixupoe", ["beta=x"], "expected beta=NUMBER[,NUMBER...]"),
    ("mixupoe", ["beta=1,1"], "a value is listed twice"),
    ("mixupoe", ["beta=1", "beta=2"], "--grid beta: given twice"),
    ("mixupoe", ["beta=-1"], "--beta must be >= 0"),
    ("mixupoe", ["alpha=0"], "--alpha and --alpha-in-in must be > 0"),
])
def test_bad_grids_fail_in_one_line_before_any_work(setting, tmp_path, capsys, method, grid, message):
    args = sweep_args(setting, tmp_path / "o")
    args[args.index("--method") + 1] = method
    args = [a for i, a in enumerate(args) if a != "--grid" and (i == 0 or args[i - 1] != "--grid")]
    for spec in grid:
        args += ["--grid", spec]
    status, _, err = run_cli(*args, capsys=capsys)
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_other_bad_arguments(setting, tmp_path, capsys):
    status, _, err = run_cli("sweep", "--method", "standard", "--grid", "beta=1", "--manifest", "m", "--root", "r",
                             "--out", tmp_path / "o", capsys=capsys)
    assert status == 2 and "invalid choice: 'standard'" in err
    status, _, err = run_cli(*sweep_args(setting, tmp_path / "o", "--ood", "holdout"), capsys=capsys)
    assert status == 2 and "add --evaluate-test (they never select)" in err
    no_outliers = [a for a in sweep_args(setting, tmp_path / "o") if a not in ("--outliers", setting["base"] / "out" / "places365",
                                                                                "--outlier-root", setting["places"])]
    status, _, err = run_cli(*no_outliers, capsys=capsys)
    assert status == 2 and "method mixupoe needs --outliers" in err
    for scorer, message in (("foo", "unknown scorer 'foo'"), ("rotation", "--scorer rotation needs a model trained with")):
        status, _, err = run_cli(*sweep_args(setting, tmp_path / "o", "--scorer", scorer), capsys=capsys)
        assert status == 2 and message in err  # before the baseline is trained and OUT pinned
    places = setting["base"] / "out" / "places365"
    status, _, err = run_cli(*sweep_args(setting, tmp_path / "o", "--val-ood", places), capsys=capsys)
    assert status == 2 and "not a set of validation outliers" in err and "--evaluate-test --ood" in err
    # an --init that was trained on the ID validation images the sweep selects on
    from fgood_bench.tools.models import build_model, save_classifier

    bird = Manifest.load(setting["base"] / "out" / "bird")
    save_classifier(tmp_path / "seen.pt", build_model("resnet18", 8, None, 32), "resnet18", bird.id_class_names)
    status, _, err = run_cli(*sweep_args(setting, tmp_path / "o", "--init", tmp_path / "seen.pt"), capsys=capsys)
    assert status == 2 and "trained on the ID validation images the sweep selects on" in err
    assert not (tmp_path / "o").exists()
    # train itself refuses to fine-tune such a model into one that claims to have left them out
    from fgood_bench.errors import FgoodError
    from fgood_bench.training.train import TrainRequest, train

    with pytest.raises(FgoodError, match="seen.pt: was trained on the ID validation images this training leaves out"):
        train(TrainRequest(method="oe", manifest=bird.path, root=setting["root"], out=tmp_path / "t", init=tmp_path / "seen.pt",
                           outliers=setting["base"] / "out" / "places365", outlier_root=setting["places"],
                           settings={"arch": "resnet18", "image_size": 32}, hold_out_validation=0, progress=False))


def test_training_leaves_out_the_id_validation_images_evaluate_carves(setting):
    from fgood_bench.manifests.image_sets import held_out_in_training, id_validation
    from fgood_bench.manifests.image_sets import without_validation as _without_validation

    bird = Manifest.load(setting["base"] / "out" / "bird")
    rows = bird.split("id_train")
    kept, record = _without_validation(bird, rows, setting["root"], seed=3)
    validation = id_validation(bird, setting["root"], 3)
    assert record == validation.record and len(kept.paths) == len(rows.paths) - len(validation.images.paths) == 40
    assert not set(kept.paths) & set(validation.images.paths) and set(kept.paths) | set(validation.images.paths) == set(rows.paths)
    assert kept.labels == [y for p, y in zip(rows.paths, rows.labels) if p in set(kept.paths)]
    assert _without_validation(bird, rows, setting["root"], None) == (rows, None)
    # evaluate tells whether a checkpoint was trained without them
    assert held_out_in_training(validation, {"held_out_id_validation": record})
    assert not held_out_in_training(validation, {}) and not held_out_in_training(id_validation(bird, setting["root"], 4), {
        "held_out_id_validation": record})


def crafted(name, point, accuracy, aupr):
    return {"name": name, "point": point, "checkpoint": f"points/{name}/train/classifier.pt", "checkpoint_sha256": "0" * 64,
            "validation": {"accuracy": accuracy, "aupr": aupr, "auroc": aupr, "fpr95": 1 - aupr,
                           "per_kind": {"gaussian": {"auroc": aupr}}, "pooled": {},
                           "id_validation": {"source": "carved from id_train", "seed": 0, "count": 8},
                           "counts": {"id_val": 8, "val": 8}}}


def test_a_sweep_whose_points_are_done_only_selects_and_reports(setting, tmp_path, capsys, monkeypatch):
    """Points with a result.json are never trained again; the selection follows the rule on their
    crafted validation results and changes with the selection options alone."""
    out = tmp_path / "sweep"
    (out / "baseline").mkdir(parents=True)
    (out / ".fgood-bench.json").write_bytes(marker_bytes("sweep"))
    (out / "baseline" / "result.json").write_text(json.dumps(crafted("baseline", {}, 0.905, 0.5)))  # the Standard model
    values = {(0.4, 1.0): (0.900, 0.70), (0.4, 5.0): (0.870, 0.95), (1.0, 1.0): (0.905, 0.80), (1.0, 5.0): (0.898, 0.85)}
    for (alpha, beta), (accuracy, aupr) in values.items():
        name = point_name({"alpha": alpha, "beta": beta})
        (out / "points" / name).mkdir(parents=True)
        (out / "points" / name / "result.json").write_text(
            json.dumps(crafted(name, {"alpha": alpha, "beta": beta}, accuracy, aupr)))
    monkeypatch.setattr("fgood_bench.training.train.train", lambda request: pytest.fail("trained a finished point"))
    monkeypatch.setattr("fgood_bench.evaluation.evaluate.evaluate", lambda request: pytest.fail("evaluated a finished point"))

    status, stdout, err = run_cli(*sweep_args(setting, out), capsys=capsys)
    assert status == 0, err
    selected = json.loads((out / "selected.json").read_text())
    assert selected["point"] == {"alpha": 1.0, "beta": 5.0} and selected["metric"] == "aupr" and selected["tolerance_points"] == 1.0
    assert selected["reference"] == "standard" and selected["reference_accuracy"] == 0.905
    assert selected["eligible"] == ["alpha=0.4,beta=1.0", "alpha=1.0,beta=1.0", "alpha=1.0,beta=5.0"]
    assert selected["checkpoint"] == "points/alpha=1.0,beta=5.0/train/classifier.pt"
    assert selected["warning"] is None  # the selected point is within the tolerance of the Standard model
    assert "| alpha \\ beta | 1 | 5 |" in stdout and "| 1 | 80.0 | **85.0** |" in stdout
    assert "Test OOD sets" not in stdout
    table = list(csv.DictReader((out / "grid.csv").open()))
    assert [r["point"] for r in table] == ["baseline", *map(lambda k: point_name({"alpha": k[0], "beta": k[1]}), values)]
    assert [r["selected"] for r in table] == ["", "0", "0", "0", "1"] and table[2]["eligible"] == "0"
    for metric in ("accuracy", "aupr", "auroc", "fpr95"):
        assert (out / f"heatmap-val-{metric}.png").read_bytes()[:4] == b"\x89PNG"
    val_set = Manifest.load(out / "val-ood" / "synthetic-val")  # built from the benchmark (no --val-ood)
    assert val_set.data["sample"]["per_kind"] == 1 and val_set.data["sample"]["image_size"] == 32

    # the selection options are not pinned: a stricter tolerance picks the best accuracy's neighbourhood
    status, _, err = run_cli(*sweep_args(setting, out, "--accuracy-tolerance", "0.5"), capsys=capsys)
    assert status == 0, err
    assert json.loads((out / "selected.json").read_text())["point"] == {"alpha": 1.0, "beta": 1.0}
    # the heat maps in another format replace the earlier ones: no stale PNG shows an old selection
    status, _, err = run_cli(*sweep_args(setting, out, "--accuracy-tolerance", "0.5", "--figure-format", "svg"), capsys=capsys)
    assert status == 0, err
    assert sorted(p.name for p in out.glob("heatmap-*")) == [f"heatmap-val-{m}.svg" for m in ("accuracy", "aupr", "auroc", "fpr95")]
    # a Standard model more accurate than every point: the most accurate point, with a warning
    (out / "baseline" / "result.json").write_text(json.dumps(crafted("baseline", {}, 0.95, 0.5)))
    status, _, err = run_cli(*sweep_args(setting, out), capsys=capsys)
    selected = json.loads((out / "selected.json").read_text())
    assert status == 0 and selected["point"] == {"alpha": 1.0, "beta": 1.0} and selected["eligible"] == ["alpha=1.0,beta=1.0"]
    assert "more than 1 point below the standard model's (95.0%)" in selected["warning"] and "warning:" in err
    # training settings are: another learning rate is another sweep
    status, _, err = run_cli(*sweep_args(setting, out, "--lr", "0.5"), capsys=capsys)
    assert status == 2 and "this sweep was started with other settings (training)" in err


@pytest.mark.slow
def test_two_by_two_mixupoe_sweep_end_to_end_resumes_after_a_kill(setting, tmp_path, capsys, monkeypatch):
    real_evaluate = __import__("fgood_bench.evaluation.evaluate", fromlist=["evaluate"]).evaluate
    real_train = __import__("fgood_bench.training.train", fromlist=["train"]).train
    evaluated, trained, killed = [], [], []

    def dying_evaluate(request):  # the first run is killed while evaluating the second grid point
        evaluated.append(request.out.parent.name)
        if len(evaluated) == 3 and not killed:
            killed.append(request.out)
            raise KeyboardInterrupt
        return real_evaluate(request)

    monkeypatch.setattr("fgood_bench.evaluation.evaluate.evaluate", dying_evaluate)
    monkeypatch.setattr("fgood_bench.training.train.train", lambda request: trained.append(request.out.parent.name) or real_train(request))
    out = tmp_path / "sweep"
    status, _, _ = run_cli(*sweep_args(setting, out), capsys=capsys)
    assert status == 130 and not (out / "selected.json").exists()
    assert evaluated == ["baseline", "alpha=0.4,beta=1.0", "alpha=0.4,beta=5.0"]
    assert (out / "points" / "alpha=0.4,beta=1.0" / "result.json").exists()
    assert not (out / "points" / "alpha=0.4,beta=5.0" / "result.json").exists()

    evaluated.clear()
    trained.clear()
    status, stdout, err = run_cli(*sweep_args(setting, out, "--evaluate-test"), capsys=capsys)
    assert status == 0, err
    # the finished points are not trained again; the killed one resumes its finished training
    assert trained == ["alpha=0.4,beta=5.0", "alpha=1.0,beta=1.0", "alpha=1.0,beta=5.0"]
    assert evaluated == ["baseline", "alpha=0.4,beta=1.0", "alpha=0.4,beta=5.0", "alpha=0.4,beta=5.0", "alpha=1.0,beta=1.0",
                         "alpha=1.0,beta=1.0", "alpha=1.0,beta=5.0", "alpha=1.0,beta=5.0"]  # test sets: every point

    summary = json.loads((out / "results.json").read_text())
    bird = Manifest.load(setting["base"] / "out" / "bird")
    for point in [summary["baseline"], *summary["points"]]:
        checkpoint = torch.load(out / point["checkpoint"], weights_only=True)
        record = point["validation"]["id_validation"]
        assert record["source"] == "carved from id_train" and record["held_out_in_training"] is True
        assert checkpoint["held_out_id_validation"]["paths_sha256"] == record["paths_sha256"]
        assert checkpoint["id_accuracy"] is None  # train skips its summary pass: evaluate reports the accuracy
        assert set(point["validation"]["per_kind"]) == {"gaussian", "rademacher", "blobs", "arithmetic_mean",
                                                         "geometric_mean", "speckle", "inverted", "pixelated"}
        for metric, key in (("auroc", "auroc"), ("aupr", "aupr_out"), ("fpr95", "fpr95")):
            assert point["validation"][metric] == pytest.approx(np.mean([m[key] for m in point["validation"]["per_kind"].values()]))
        results = json.loads((out / point["checkpoint"]).parent.parent.joinpath("eval-val", "results.json").read_text())
        assert results["ood_sets"]["val"]["scored_against"] == "id_val" and set(results["metrics"]) == {"val"}
        assert point["validation"]["accuracy"] == results["id_val_accuracy"]
        assert set(point["test"]["metrics"]) == {"holdout"}
    log = (out / "baseline" / "train" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["step"] == 5  # 40 of the 48 id_train images (8 held out), 8 per step
    assert summary["points"][1]["point"] == {"alpha": 0.4, "beta": 5.0}

    # the selection reads the validation results only, by the rule
    rows = [{"name": p["name"], "validation": p["validation"]} for p in summary["points"]]
    expected = select_point(rows, "aupr", 1.0, standard=summary["baseline"])["selected"]  # against the Standard model
    selected = json.loads((out / "selected.json").read_text())
    assert point_name(selected["point"]) == expected == summary["selection"]["selected"]
    assert "## Test OOD sets (analysis only" in stdout and "| alpha \\ beta | 1 | 5 |" in stdout
    assert summary["test"]["sets"] == ["holdout"] and "never used" in summary["test"]["note"]
    assert (out / "heatmap-test-holdout-aupr.png").is_file() and (out / "heatmap-val-aupr.png").is_file()
    assert "test_holdout_aupr" in (out / "grid.csv").read_text().splitlines()[0]
    # the accuracy is that of the held-out images
    from fgood_bench.manifests.image_sets import id_validation
    from fgood_bench.tools.loop import TrainConfig, predict_logits
    from fgood_bench.tools.runtime import setup_runtime
    from fgood_bench.tools.models import load_classifier

    model, _ = load_classifier(out / selected["checkpoint"], 8)
    images = id_validation(bird, setting["root"], 0).images
    logits = predict_logits(model.eval(), setting["root"], images.paths, TrainConfig(image_size=32, workers=0), setup_runtime("cpu"),
                            progress=False)
    assert selected["validation"]["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == np.asarray(images.labels)))

    # done: a rerun trains and evaluates nothing and writes the same selection
    evaluated.clear()
    trained.clear()
    before = (out / "selected.json").read_bytes()
    status, _, err = run_cli(*sweep_args(setting, out), capsys=capsys)
    assert status == 0, err
    assert trained == [] and evaluated == [] and (out / "selected.json").read_bytes() == before


def test_one_seed_writes_the_outputs_as_before(setting, tmp_path, capsys, monkeypatch):
    """--seeds 1 (the default) is the sweep without --seeds, byte for byte: no seed folders, no std."""
    out = tmp_path / "sweep"
    (out / "points").mkdir(parents=True)
    (out / ".fgood-bench.json").write_bytes(marker_bytes("sweep"))
    (out / "baseline").mkdir()
    (out / "baseline" / "result.json").write_text(json.dumps(crafted("baseline", {}, 0.905, 0.5)))
    for (alpha, beta), (accuracy, aupr) in {(0.4, 1.0): (0.9, 0.7), (0.4, 5.0): (0.87, 0.95), (1.0, 1.0): (0.905, 0.8),
                                            (1.0, 5.0): (0.898, 0.85)}.items():
        name = point_name({"alpha": alpha, "beta": beta})
        (out / "points" / name).mkdir()
        (out / "points" / name / "result.json").write_text(json.dumps(crafted(name, {"alpha": alpha, "beta": beta}, accuracy, aupr)))
    monkeypatch.setattr("fgood_bench.training.train.train", lambda request: pytest.fail("trained a finished point"))
    written = {}
    for extra in ([], ["--seeds", "1"]):
        status, stdout, err = run_cli(*sweep_args(setting, out, *extra), capsys=capsys)
        assert status == 0, err
        written[tuple(extra)] = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    assert written[()] == written[("--seeds", "1")]
    results = json.loads(written[()]["results.json"])
    assert "seeds" not in results and all("std" not in p and "runs" not in p for p in results["points"])
    assert written[()]["grid.csv"].decode().splitlines()[0] == (
        "point,alpha,beta,val_accuracy,val_aupr,val_auroc,val_fpr95,eligible,selected")
    assert "±" not in stdout and not any(p.name.startswith("seed-") for p in out.rglob("*"))


def test_mean_of_runs_and_the_reports_show_mean_and_std():
    from fgood_bench.study.sweep import mean_of_runs
    from fgood_bench.study.sweep_report import grid_csv, sweep_markdown

    runs = [crafted("alpha=1.0", {"alpha": 1.0}, 0.90, 0.70), crafted("alpha=1.0", {"alpha": 1.0}, 0.80, 0.90)]
    row = mean_of_runs(runs, [0, 1])
    assert row["validation"]["accuracy"] == pytest.approx(0.85) and row["validation"]["aupr"] == pytest.approx(0.80)
    assert row["std"]["aupr"] == pytest.approx(np.std([0.7, 0.9], ddof=1))
    assert row["validation"]["per_kind"]["gaussian"]["auroc"] == pytest.approx(0.80)
    assert [r["seed"] for r in row["runs"]] == [0, 1] and row["checkpoint"] == runs[0]["checkpoint"]
    summary = {"settings": {"method": "mixupoe", "benchmark": {"name": "bird"}}, "grid": {"alpha": [1.0]}, "baseline": None,
               "points": [row], "test": None, "seeds": [0, 1], "validation_protocol": "msp",
               "selection": {"selected": "alpha=1.0", "eligible": ["alpha=1.0"], "point": {"alpha": 1.0},
                             "checkpoint": row["checkpoint"], "rule": "r", "metric": "aupr", "tolerance_points": 1.0,
                             "reference": "best point", "reference_accuracy": 0.85, "warning": None}}
    text = sweep_markdown(summary)
    assert "| alpha=1.0 | 85.0 ± 7.1 | 80.0 ± 14.1 |" in text and "over 2 training runs, seeds 0 to 1" in text
    table = list(csv.DictReader(grid_csv(summary).splitlines()))
    assert table[0]["val_aupr"] == repr(0.8) or float(table[0]["val_aupr"]) == pytest.approx(0.8)
    assert float(table[0]["val_aupr_std"]) == pytest.approx(row["std"]["aupr"]) and table[0]["runs"] == "2"


@pytest.mark.slow
def test_a_one_point_sweep_with_two_seeds_records_both_runs_and_resumes(setting, tmp_path, capsys, monkeypatch):
    """--seeds 2: the point and the standard model it fine-tunes are trained with seeds 0 and 1 (the
    point's seed-1 run from the seed-1 standard model); the row is the mean, with a std; a rerun
    trains and evaluates nothing."""
    real_evaluate = __import__("fgood_bench.evaluation.evaluate", fromlist=["evaluate"]).evaluate
    real_train = __import__("fgood_bench.training.train", fromlist=["train"]).train
    trained, evaluated = [], []
    monkeypatch.setattr("fgood_bench.evaluation.evaluate.evaluate",
                        lambda request: evaluated.append(request.out) or real_evaluate(request))
    monkeypatch.setattr("fgood_bench.training.train.train", lambda request: trained.append(
        (request.out, request.settings.get("seed"), request.init)) or real_train(request))
    out = tmp_path / "sweep"
    args = sweep_args(setting, out, "--seeds", "2")
    args[args.index("alpha=0.4,1")] = "alpha=1"
    args[args.index("beta=1,5")] = "beta=5"
    status, stdout, err = run_cli(*args, capsys=capsys)
    assert status == 0, err
    point = out / "points" / "alpha=1.0,beta=5.0"
    assert [(o, s) for o, s, _ in trained] == [(out / "baseline" / "train", 0), (out / "baseline" / "seed-1" / "train", 1),
                                               (point / "train", 0), (point / "seed-1" / "train", 1)]
    assert trained[3][2] == out / "baseline" / "seed-1" / "train" / "classifier.pt"
    assert torch.load(point / "seed-1" / "train" / "classifier.pt", weights_only=True)["training"]["seed"] == 1
    summary = json.loads((out / "results.json").read_text())
    row = summary["points"][0]
    assert summary["seeds"] == [0, 1] and [r["seed"] for r in row["runs"]] == [0, 1]
    assert row["runs"][1]["checkpoint"] == "points/alpha=1.0,beta=5.0/seed-1/train/classifier.pt"
    for metric in ("accuracy", "aupr", "auroc", "fpr95"):
        values = [r["validation"][metric] for r in row["runs"]]
        assert row["validation"][metric] == pytest.approx(np.mean(values))
        assert row["std"][metric] == pytest.approx(np.std(values, ddof=1))
    assert len(summary["baseline"]["runs"]) == 2 and "std" in summary["baseline"]
    assert summary["baseline"]["runs"][0]["validation"]["id_validation"]["paths_sha256"] == \
        summary["baseline"]["runs"][1]["validation"]["id_validation"]["paths_sha256"]  # the same held-out images
    assert " ± " in stdout and "seed 1 of 2" in err and "grid point 2 of 2" in err
    selected = json.loads((out / "selected.json").read_text())
    assert [r["seed"] for r in selected["runs"]] == [0, 1] and set(selected["std"]) == {"accuracy", "aupr", "auroc", "fpr95"}
    trained.clear()
    evaluated.clear()
    before = (out / "results.json").read_bytes()
    status, _, err = run_cli(*args, capsys=capsys)
    assert status == 0, err
    assert trained == [] and evaluated == [] and (out / "results.json").read_bytes() == before
