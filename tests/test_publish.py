"""publish: config validation, a whole release (given predictions and tiny training), resume after a
crash, byte-identical rebuilds, the release notes, and full-size datasets."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import run_cli, write_predictions
from fgood_bench import publish as publishing
from fgood_bench.datasets import load_dataset, synthetic
from fgood_bench.manifests.files import sha256_file
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.publish import NOTES

EXCLUSIONS = Path(__file__).parents[1] / "manifests" / "exclusions"
TINY = {"arch": "resnet18", "weights": None, "epochs": 1, "image_size": 32, "batch_size": 8, "workers": 0}


def write_config(path: Path, document: dict) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def predictions_for(dataset: str, root: Path, path: Path, seed: int = 0) -> Path:
    """Random logits for every image of the evaluation split (as build-splits --predictions reads them)."""
    index = load_dataset(dataset, root)
    table = index.split("test" if "test" in index.splits else "val")
    logits = np.random.default_rng(seed).normal(size=(table.num_rows, index.num_classes)).astype(np.float32)
    logits[np.arange(table.num_rows), table.column("label").to_numpy()] += 2.0
    np.savez(path, paths=np.array(table.column("path").to_pylist()), logits=logits)
    return path


@pytest.fixture(scope="module")
def side_sets(tmp_path_factory) -> dict[str, Path]:
    """Generated Places365, DTD, WebVision and MINC-2500 downloads (the release's other datasets)."""
    base = tmp_path_factory.mktemp("side-sets")
    return {name: synthetic.write_sample(name, base / name) for name in ("places365", "dtd", "webvision", "minc2500")}


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)}


# -- configuration errors: one line naming the key, nothing written --------------------------


@pytest.fixture
def small_cub(tmp_path):
    return synthetic.write_sample("cub", tmp_path / "data")


@pytest.mark.parametrize("document, message", [
    ({"colour": 1}, "colour: unknown key (expected one of roots, benchmarks"),
    ({"benchmarks": ["bird"], "ood_sets": [], "outliers": []}, "roots.cub: missing, needed by benchmark bird"),
    ({"roots": {"cub": "elsewhere"}, "benchmarks": ["bird"], "ood_sets": [], "outliers": []}, "roots.cub: "),
    ({"roots": {"cub": "data"}, "benchmarks": ["bird", "fish"]}, "benchmarks: unknown 'fish'"),
    ({"roots": {"cub": "data"}, "benchmarks": {"bird": {"predictions": "none.npz"}}}, "benchmarks.bird.predictions: "),
    ({"roots": {"cub": "data"}, "benchmarks": {"bird": {"num_id": 0}}}, "benchmarks.bird.num_id: expected a positive integer"),
    ({"roots": {"cub": "data"}, "benchmarks": ["bird"], "ranking": {"lr": "fast"}}, "ranking.lr: expected float, got 'fast'"),
    ({"roots": {"cub": "data"}, "benchmarks": ["bird"], "ranking": {"depth": 50}}, "ranking.depth: unknown key"),
    ({"roots": {"cub": "data"}, "benchmarks": ["bird"], "ood_sets": {"places365": {"size": 0}}}, "ood_sets.places365.size: "),
    ({"roots": {"cub": "data"}, "benchmarks": ["bird"], "ood_sets": ["places365"], "outliers": []},
     "roots.places365: missing, needed by OOD set places365"),
    ({"roots": {"cub": "data"}, "benchmarks": ["bird"], "ood_sets": [], "outliers": ["webvision"]},
     "roots.webvision: missing, needed by outlier set webvision"),
    ({"roots": {"cub": "data"}, "benchmarks": ["bird"], "exports": ["csv"]}, "exports: unknown 'csv'"),
    ({"roots": {"cub": "data"}, "dataset_options": {"cub": {"variant": "low"}}}, "dataset_options.cub.variant: unknown key"),
    ({"roots": {"cub": "data"}, "benchmarks": ["bird"], "hash_images": "yes"}, "hash_images: expected true or false"),
])
def test_config_errors_name_the_key(document, message, small_cub, tmp_path, capsys):
    config = write_config(tmp_path / "release.yaml", document)
    status, _, err = run_cli("publish", "--config", config, "--out", tmp_path / "out", capsys=capsys)
    assert status == 2 and err.count("\n") == 1, err
    assert f"release.yaml: {message}" in err
    assert not (tmp_path / "out").exists()


def test_bad_yaml_and_missing_config(tmp_path, capsys):
    (tmp_path / "broken.yaml").write_text("roots: [\n")
    status, _, err = run_cli("publish", "--config", tmp_path / "broken.yaml", "--out", tmp_path / "out", capsys=capsys)
    assert status == 2 and "broken.yaml: not valid YAML" in err
    status, _, err = run_cli("publish", "--config", tmp_path / "none.yaml", "--out", tmp_path / "out", capsys=capsys)
    assert status == 2 and "none.yaml: config file not found" in err


def test_output_folder_rules(small_cub, tmp_path, capsys):
    """A new release needs an empty folder; --resume needs an interrupted release with the same config."""
    predictions_for("cub", small_cub, tmp_path / "preds.npz")
    document = {"roots": {"cub": "data"}, "benchmarks": {"bird": {"predictions": "preds.npz", "num_id": 2}},
                "ood_sets": [], "outliers": [], "exports": []}
    config = write_config(tmp_path / "release.yaml", document)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    status, _, err = run_cli("publish", "--config", config, "--out", tmp_path / "full", capsys=capsys)
    assert status == 2 and "a folder that fgood-bench did not create" in err and (tmp_path / "full" / "mine.txt").read_text() == "keep"
    status, _, err = run_cli("publish", "--config", config, "--out", tmp_path / "new", "--resume", capsys=capsys)
    assert status == 2 and "no release to resume here" in err
    status, out, err = run_cli("publish", "--config", config, "--out", tmp_path / "out", capsys=capsys)
    assert status == 0, err
    assert out.strip() == str(tmp_path / "out" / "RELEASE.md")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".fgood-bench.json", ".publish-state.json", ".work", "RELEASE.md",
                                                                    "audit", "bird", "release.json"]
    status, _, err = run_cli("publish", "--config", config, "--out", tmp_path / "out", capsys=capsys)
    assert status == 2 and "holds an earlier publish output; continue the interrupted release with --resume" in err
    write_config(config, {**document, "benchmarks": {"bird": {"predictions": "preds.npz", "num_id": 3}}})
    status, _, err = run_cli("publish", "--config", config, "--out", tmp_path / "out", "--resume", capsys=capsys)
    assert status == 2 and "the config or its predictions/checkpoints changed" in err


# -- a whole release ---------------------------------------------------------------------------


@pytest.fixture
def release_config(dozen_birds, side_sets, tmp_path) -> Path:
    """bird (12 CUB-layout classes, K=8) and car (3 classes, K=2), both from predictions files,
    with every OOD and outlier set and both exports."""
    cars = synthetic.write_sample("stanford_cars", tmp_path / "cars")
    write_predictions(tmp_path / "bird.npz", dozen_birds, {c: 0.4 + c / 40 for c in range(12)})
    predictions_for("stanford_cars", cars, tmp_path / "car.npz")
    roots = {"cub": str(dozen_birds), "stanford_cars": str(cars), **{k: str(v) for k, v in side_sets.items()}}
    return write_config(tmp_path / "release.yaml", {
        "roots": roots,
        "benchmarks": {"bird": {"predictions": "bird.npz", "num_id": 8}, "car": {"predictions": "car.npz", "num_id": 2}},
    })


def test_release_resumes_after_a_crash_and_rebuilds_byte_identically(release_config, tmp_path, monkeypatch):
    reference = publishing.publish(release_config, tmp_path / "reference").parent
    stages = [s.name for s in publishing.plan_stages(publishing.load_config(release_config))]
    assert stages == ["splits:bird", "splits:car", "ood:places365", "ood:textures", "outliers:webvision-bird",
                      "outliers:webvision-car", "outliers:minc2500", "audit:bird", "audit:car", "verify",
                      "export:openood:bird", "export:openood:car",
                      "export:hf:bird", "export:hf:car"]

    # a crash in the middle of the sixth stage (outliers:webvision-car)
    real_filter = publishing.filter_outliers
    calls = []

    def crashing_filter(*args, **kwargs):
        calls.append(kwargs["name"])
        if kwargs["name"] == "webvision-car":
            raise KeyboardInterrupt
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(publishing, "filter_outliers", crashing_filter)
    with pytest.raises(KeyboardInterrupt):
        publishing.publish(release_config, tmp_path / "cut")
    state = json.loads((tmp_path / "cut" / ".publish-state.json").read_text())["stages"]
    assert [name for name, s in state.items() if s["status"] == "done"] == stages[:5]
    assert state["outliers:webvision-car"] == {"status": "running"}
    assert not (tmp_path / "cut" / "RELEASE.md").exists()

    # --resume: earlier stages are not run again, the interrupted one is redone
    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr(publishing, "build_splits", must_not_run)
    monkeypatch.setattr(publishing, "build_ood_set", must_not_run)
    monkeypatch.setattr(publishing, "filter_outliers", real_filter)
    publishing.publish(release_config, tmp_path / "cut", resume=True)
    resumed_state = json.loads((tmp_path / "cut" / ".publish-state.json").read_text())["stages"]
    assert all(resumed_state[name] == state[name] for name in stages[:5])  # their times kept, not re-measured
    assert calls == ["webvision-bird", "webvision-car"]

    expected, resumed = files_of(reference), files_of(tmp_path / "cut")
    assert expected.keys() == resumed.keys()
    differ = {name for name in expected if expected[name] != resumed[name]}
    assert differ <= set(NOTES)  # only the notes (timings) may differ; every manifest, split and export is identical
    release = json.loads(expected["release.json"])
    assert release["files"] == {name: sha256_file(reference / name) for name in expected if name not in NOTES}
    assert release["files"] == json.loads(resumed["release.json"])["files"]


def test_a_release_logs_each_stage_off_a_terminal(release_config, tmp_path, capsys, monkeypatch):
    """Issue 27 item 1: publish says which stage it is in, and the progress lines inside a stage carry its position."""
    import fgood_bench.publish as publish
    from fgood_bench.progress import LineProgress

    real_verify = publish.verify_manifest

    def verify_with_a_loop(*args, **kwargs):  # a loop inside the verify stage, as image hashing has
        for _ in LineProgress(range(2), desc="hashing", interval=0.0):
            pass
        return real_verify(*args, **kwargs)

    monkeypatch.setattr(publish, "verify_manifest", verify_with_a_loop)
    status, _, err = run_cli("publish", "--config", release_config, "--out", tmp_path / "out", capsys=capsys)
    assert status == 0, err
    lines = err.splitlines()
    assert any(line.startswith("[1/") for line in lines)  # each stage announced with its position
    assert any(line.startswith("[release stage ") and "] hashing: 2/2" in line for line in lines), lines


def test_release_layout_summary_and_verification(release_config, tmp_path, capsys):
    out = tmp_path / "release"
    status, _, err = run_cli("publish", "--config", release_config, "--out", out, capsys=capsys)
    assert status == 0, err
    assert "[14/14] export:hf:car" in err
    audit = json.loads((out / "audit" / "bird" / "audit.json").read_text())  # the leakage audit of each benchmark
    pairs = {(c["a"], c["b"]) for c in audit["counts"]}  # outliers, id_train and the OOD sets against the benchmark
    assert ("id_train", "id_test") in pairs and ("places365", "id_test") in pairs and ("outliers", "holdout") in pairs
    for folder in ("bird", "car", "ood/places365", "ood/textures", "outliers/webvision-bird", "outliers/webvision-car",
                   "outliers/minc2500", "exports/openood/bird", "exports/hf/car"):
        assert (out / folder).is_dir(), folder
    assert sorted(p.name for p in (out / "bird").iterdir()) == [".fgood-bench.json", "manifest.json", "predictions.npz", "ranking.csv", "splits"]
    config = yaml.safe_load(release_config.read_text())
    status, stdout, _ = run_cli("verify", out / "bird", "--root", config["roots"]["cub"], "--images", capsys=capsys)
    assert status == 0 and stdout.splitlines()[-1] == "OK: 96 images in 3 splits, all decoded"

    release = json.loads((out / "release.json").read_text())
    assert set(release["versions"]) >= {"fgood-bench", "torch", "torchvision", "datasets"}
    assert release["hardware"]["cpu"] and release["hardware"]["gpus"] == []
    assert [t["stage"] for t in release["stages"]][0] == "splits:bird" and all(t["seconds"] >= 0 for t in release["stages"])
    bird = release["benchmarks"]["bird"]
    manifest = Manifest.load(out / "bird")
    ranked = manifest.data["ranking"]["classes"]
    assert bird["boundary_margin"] == pytest.approx(ranked[7]["score"] - ranked[8]["score"])
    assert bird["boundary_margin"] > 0  # write_predictions: each class more confident than the previous one
    assert bird["id_classes"] == 8 and bird["holdout_classes"] == 4
    assert bird["splits"] == {"id_train": 48, "id_test": 32, "ood_test": 16}
    published = json.loads((EXCLUSIONS / "bird.json").read_text())
    assert bird["outliers"]["excluded_concepts"] == len(published["excluded_wnids"]) == 59
    assert bird["outliers"]["excluded_images"] == 6  # the sample's brambling images (Google and Flickr)
    assert bird["manifest_sha256"] == sha256_file(out / "bird" / "manifest.json")
    notes = (out / "RELEASE.md").read_text()
    assert f"| bird | cub | 8 / 4 | 48 | - | 32 | 16 | {bird['boundary_margin']:.4f} | 59 / 6 |" in notes
    assert "| ood/places365 | ood_set | places365 | 9 |" in notes and "| splits:bird |" in notes
    assert Manifest.load(out / "ood" / "textures").name == "textures"
    openood = (out / "exports" / "openood" / "car" / "data" / "benchmark_imglist" / "car" / "test_holdout.txt").read_text().splitlines()
    assert openood == [f"{p} -1" for p in Manifest.load(out / "car").split("ood_test").paths]
    # with its validation lists, so that OpenOOD's APS search and the postprocessors that read val run
    ood_config = yaml.safe_load((out / "exports" / "openood" / "car" / "configs" / "datasets" / "car" / "car_ood.yml").read_text())
    assert ood_config["ood_dataset"]["split_names"][0] == "val"
    assert (out / "exports" / "openood" / "car" / ood_config["ood_dataset"]["val"]["imglist_pth"]).read_text().strip()
    # and the release's OOD sets as far-OOD: nothing left for OpenOOD's test pipeline to miss, so no note
    assert ood_config["ood_dataset"]["farood"]["datasets"] == ["places365", "textures"]
    assert next(s for s in release["stages"] if s["stage"] == "export:openood:car")["note"] is None


def test_openood_export_of_paths_with_spaces_is_left_out_with_a_note(side_sets, tmp_path):
    """Tsinghua Dogs has a 'Fila Braziliero' folder: OpenOOD lists cannot hold it, the release says so."""
    dogs = synthetic.write_sample("thudogs", tmp_path / "dogs")
    predictions_for("thudogs", dogs, tmp_path / "dog.npz")
    config = write_config(tmp_path / "release.yaml", {
        "roots": {"thudogs": str(dogs)}, "benchmarks": {"dog": {"predictions": "dog.npz", "num_id": 2}},
        "ood_sets": [], "outliers": [], "exports": ["openood"]})
    publishing.publish(config, tmp_path / "out")
    assert not (tmp_path / "out" / "exports").exists()
    stage = json.loads((tmp_path / "out" / "release.json").read_text())["stages"][-1]
    assert stage["stage"] == "export:openood:dog" and "has a space" in stage["note"]


# -- full size, and a benchmark trained here ---------------------------------------------------


@pytest.mark.slow
def test_full_size_bird_and_car_with_predictions_and_a_trained_benchmark(full_cub, full_cars, side_sets, tmp_path, capsys):
    """The paper's K on the full-size native layouts (bird, car from predictions files), plus
    aircraft ranked by a tiny classifier trained here; verifies, and rebuilds byte-identically."""
    aircraft = synthetic.write_sample("fgvc_aircraft", tmp_path / "aircraft")
    predictions_for("cub", full_cub, tmp_path / "bird.npz", seed=1)
    predictions_for("stanford_cars", full_cars, tmp_path / "car.npz", seed=2)
    roots = {"cub": str(full_cub), "stanford_cars": str(full_cars), "fgvc_aircraft": str(aircraft),
             **{k: str(v) for k, v in side_sets.items()}}
    config = write_config(tmp_path / "release.yaml", {
        "roots": roots, "ranking": {**TINY, "seeds": 2},
        "benchmarks": {"bird": {"predictions": "bird.npz"}, "car": {"predictions": "car.npz"}, "aircraft": {"num_id": 2}},
    })
    for out in ("a", "b"):
        status, _, err = run_cli("publish", "--config", config, "--out", tmp_path / out, capsys=capsys)
        assert status == 0, err
    release = json.loads((tmp_path / "a" / "release.json").read_text())
    for benchmark, dataset, holdout in (("bird", "cub", 100), ("car", "stanford_cars", 96)):
        summary, index = release["benchmarks"][benchmark], load_dataset(dataset, roots[dataset])
        id_classes = {c["index"] for c in Manifest.load(tmp_path / "a" / benchmark).data["id_classes"]}
        train_labels = index.split("train").column("label").to_pylist()
        assert summary["id_classes"] == 100 and summary["holdout_classes"] == holdout
        assert summary["splits"]["id_train"] == sum(label in id_classes for label in train_labels)
        assert summary["splits"]["id_test"] + summary["splits"]["ood_test"] == index.split_counts()["test"]
    aircraft_manifest = Manifest.load(tmp_path / "a" / "aircraft")
    source = aircraft_manifest.data["predictions"]["source"]  # ranking.seeds 2: two classifiers, a consensus
    assert source["kind"] == "consensus" and [r["arch"] for r in source["rankings"]] == ["resnet18", "resnet18"]
    assert json.loads((tmp_path / "a" / "aircraft" / "stability.json").read_text())["num_rankings"] == 2
    for benchmark, dataset in (("bird", "cub"), ("car", "stanford_cars")):
        status, out, _ = run_cli("verify", tmp_path / "a" / benchmark, "--root", roots[dataset], capsys=capsys)
        assert status == 0, out
    a, b = files_of(tmp_path / "a"), files_of(tmp_path / "b")
    assert a.keys() == b.keys() and {n for n in a if a[n] != b[n]} <= set(NOTES)
    with open(tmp_path / "a" / "bird" / "ranking.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert release["benchmarks"]["bird"]["boundary_margin"] == pytest.approx(float(rows[99]["score"]) - float(rows[100]["score"]))
