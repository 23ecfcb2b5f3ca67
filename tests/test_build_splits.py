"""build-splits end to end: predictions file, checkpoint, training on the CPU, torchrun, resume, bad input."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import replace_file, run_cli, write_predictions
from fgood_bench.datasets import load_dataset, synthetic
from fgood_bench.manifests.files import sha256_file

TINY = ["--arch", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size", "8", "--workers", "0"]


def read_split(folder: Path, name: str) -> list[list[str]]:
    lines = (folder / "splits" / f"{name}.txt").read_text().splitlines()
    assert lines[0] == "path\tlabel\tclass_name"
    return [line.split("\t") for line in lines[1:]]


def test_from_predictions_file(dozen_birds, tmp_path, capsys):
    confidence = {c: 0.3 + 0.05 * ((c * 5) % 12) for c in range(12)}  # all correct: rank by entropy alone
    write_predictions(tmp_path / "preds.npz", dozen_birds, confidence)
    status, out, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "out", "--num-id", "8",
                               "--predictions", tmp_path / "preds.npz", capsys=capsys)
    assert status == 0, err
    assert "note: this copy of cub has 12 classes, not the 200 of bird in the paper's Table 3" in err
    folder = tmp_path / "out" / "bird"
    assert out.strip() == str(folder / "manifest.json")
    manifest = json.loads((folder / "manifest.json").read_text())
    best_first = sorted(range(12), key=lambda c: (-confidence[c], c))
    assert [c["index"] for c in manifest["ranking"]["classes"]] == best_first
    id_classes = sorted(best_first[:8])
    assert [(c["label"], c["index"]) for c in manifest["id_classes"]] == list(enumerate(id_classes))
    assert [c["index"] for c in manifest["ood_classes"]] == sorted(best_first[8:])
    assert manifest["num_id"] == 8 and manifest["eval_split"] == "test" and manifest["train_splits"] == ["train"]
    assert {name: s["count"] for name, s in manifest["splits"].items()} == {"id_train": 48, "id_test": 32, "ood_test": 16}
    for split in manifest["splits"].values():
        assert sha256_file(folder / split["file"]) == split["sha256"]
    assert sha256_file(folder / "ranking.csv") == manifest["ranking"]["sha256"]
    assert sha256_file(folder / "predictions.npz") == manifest["predictions"]["sha256"]
    assert manifest["predictions"]["source"] == {"kind": "file", "sha256": sha256_file(tmp_path / "preds.npz")}
    assert set(manifest["dataset"]["metadata_sha256"]) == {"classes.txt", "images.txt", "image_class_labels.txt", "train_test_split.txt"}
    ood_rows = read_split(folder, "ood_test")
    assert {row[1] for row in ood_rows} == {"-1"}
    id_rows = read_split(folder, "id_train")
    label_of = {c["name"]: c["label"] for c in manifest["id_classes"]}
    assert all(int(row[1]) == label_of[row[2]] for row in id_rows)
    assert all(row[0].startswith("images/") for row in id_rows)
    top = manifest["ranking"]["classes"][0]
    assert top["accuracy"] == 1.0 and top["rank"] == 1 and top["score"] == pytest.approx(1 - top["mean_entropy"])
    with np.load(folder / "predictions.npz") as saved:
        assert saved["logits"].shape == (48, 12) and saved["paths"][0].startswith("images/001.Bird_1/")


def test_same_inputs_give_byte_identical_output(dozen_birds, tmp_path, capsys):
    write_predictions(tmp_path / "preds.npz", dozen_birds, {c: 0.5 + c / 30 for c in range(12)})
    for out in ("a", "b"):
        run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / out, "--num-id", "6",
                "--predictions", tmp_path / "preds.npz", capsys=capsys)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 7  # marker, manifest, ranking, predictions, three split files
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)


def test_val_split_roles(tmp_path, capsys):
    dogs = synthetic.write_sample("thudogs", tmp_path / "dogs")
    flowers = synthetic.write_sample("flowers102", tmp_path / "flowers")
    aircraft = synthetic.write_sample("fgvc_aircraft", tmp_path / "aircraft")
    for dataset, root, k in (("thudogs", dogs, 2), ("flowers102", flowers, 90), ("fgvc_aircraft", aircraft, 2)):
        index = load_dataset(dataset, root)
        split = "test" if "test" in index.splits else "val"
        table = index.split(split)
        logits = np.eye(index.num_classes)[table.column("label").to_numpy()] * 5
        np.savez(tmp_path / f"{dataset}.npz", paths=np.array(table.column("path").to_pylist()), logits=logits)
        status, _, err = run_cli("build-splits", "--dataset", dataset, "--num-id", str(k), "--root", root, "--out", tmp_path / "out",
                                 "--predictions", tmp_path / f"{dataset}.npz", capsys=capsys)
        assert status == 0, err
    splits = {d: json.loads((tmp_path / "out" / d / "manifest.json").read_text())["splits"] for d in ("thudogs", "flowers102", "fgvc_aircraft")}
    assert set(splits["thudogs"]) == {"id_train", "id_test", "ood_test"}  # dogs: ranked on val
    assert set(splits["flowers102"]) == {"id_train", "id_val", "id_test", "ood_test"}
    assert splits["flowers102"]["id_val"]["count"] == 90
    status, _, err = run_cli("build-splits", "aircraft", "--root", aircraft, "--out", tmp_path / "preset", "--num-id", "2",
                             "--predictions", tmp_path / "fgvc_aircraft.npz", capsys=capsys)
    manifest = json.loads((tmp_path / "preset" / "aircraft" / "manifest.json").read_text())
    assert manifest["train_splits"] == ["train", "val"] and manifest["splits"]["id_train"]["count"] == 8  # trainval


@pytest.mark.parametrize("problem, expected", [
    ("paths", "is not an image of the evaluation split"),
    ("missing", "no logits for"),
    ("width", "logits have 11 columns, the dataset has 12 classes"),
    ("nan", "are not finite (NaN or inf)"),
    ("keys", "no array 'logits'"),
    ("k", "num_id (--num-id) 12: must be 1..11 (cub has 12 classes)"),
])
def test_bad_predictions_fail_cleanly(problem, expected, dozen_birds, tmp_path, capsys):
    paths = write_predictions(tmp_path / "preds.npz", dozen_birds, {c: 0.5 for c in range(12)}, shuffle=False)
    with np.load(tmp_path / "preds.npz") as content:
        arrays = dict(content)
    if problem == "paths":
        arrays["paths"][3] = "images/elsewhere.jpg"
    elif problem == "missing":
        arrays = {"paths": arrays["paths"][1:], "logits": arrays["logits"][1:]}
    elif problem == "width":
        arrays["logits"] = arrays["logits"][:, :11]
    elif problem == "nan":
        arrays["logits"][5, 2] = np.nan
    elif problem == "keys":
        arrays = {"paths": arrays["paths"], "scores": arrays["logits"]}
    np.savez(tmp_path / "preds.npz", **arrays)
    num_id = "12" if problem == "k" else "6"
    status, _, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "out", "--num-id", num_id,
                             "--predictions", tmp_path / "preds.npz", capsys=capsys)
    assert status == 2
    assert err.count("\n") == 1 and expected in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert len(paths) == 48


def cli_process(*args):
    """A separate ``fgood-bench`` process (each pays torch's import, ~6 s here: use sparingly)."""
    return subprocess.run([sys.executable, "-m", "fgood_bench", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def trained(dozen_birds, tmp_path_factory):
    """A benchmark built by training a tiny classifier for one epoch on the CPU."""
    out = tmp_path_factory.mktemp("trained")
    assert main_quiet("build-splits", "bird", "--root", dozen_birds, "--out", out, "--num-id", "8", "--epochs", "1", *TINY) == 0
    return out


def main_quiet(*args) -> int:
    from fgood_bench.cli import main

    return main([str(a) for a in args])


def test_training_on_the_cpu_is_reproducible_and_its_checkpoint_predicts_the_same(dozen_birds, trained, tmp_path, capsys):
    status, _, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "b", "--num-id", "8",
                             "--epochs", "1", *TINY, capsys=capsys)
    assert status == 0, err
    a, b = trained / "bird", tmp_path / "b" / "bird"
    for name in ("manifest.json", "ranking.csv", "predictions.npz", "splits/id_train.txt", "splits/ood_test.txt"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    manifest = json.loads((a / "manifest.json").read_text())
    source = manifest["predictions"]["source"]
    assert source["kind"] == "trained" and source["arch"] == "resnet18" and source["epochs"] == 1 and source["seed"] == 0
    checkpoint = trained / "bird.work" / "classifier.pt"
    status, _, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "c", "--num-id", "8",
                             "--checkpoint", checkpoint, *TINY, capsys=capsys)
    assert status == 0, err
    assert (tmp_path / "c" / "bird" / "ranking.csv").read_bytes() == (a / "ranking.csv").read_bytes()
    minc = synthetic.write_sample("minc2500", tmp_path / "minc")
    status, _, err = run_cli("build-splits", "--dataset", "minc2500", "--num-id", "2", "--root", minc, "--out", tmp_path / "d",
                             "--checkpoint", checkpoint, *TINY, capsys=capsys)
    assert status == 2 and "classifier has 12 outputs, the dataset has 3 classes" in err
    assert not (tmp_path / "d" / "minc2500").exists()


def torchrun(*args):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "fgood_bench", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow  # minutes of CPU work: with the other end-to-end runs behind the slow marker (.ci/run runs them)
def test_torchrun_two_processes_shard_inference_and_train(dozen_birds, trained, tmp_path):
    checkpoint = trained / "bird.work" / "classifier.pt"
    sharded = torchrun("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "two", "--num-id", "8", "--checkpoint", checkpoint, *TINY)
    assert sharded.returncode == 0, sharded.stderr
    one, two = trained / "bird", tmp_path / "two" / "bird"
    assert (two / "ranking.csv").read_text() == (one / "ranking.csv").read_text()
    for split in ("id_train", "id_test", "ood_test"):
        assert (two / "splits" / f"{split}.txt").read_bytes() == (one / "splits" / f"{split}.txt").read_bytes()
    ddp = torchrun("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "ddp", "--num-id", "8", "--epochs", "1", *TINY)
    assert ddp.returncode == 0, ddp.stderr
    manifest = json.loads((tmp_path / "ddp" / "bird" / "manifest.json").read_text())
    assert manifest["splits"]["id_test"]["count"] == 32 and (tmp_path / "ddp" / "bird.work" / "classifier.pt").is_file()


@pytest.mark.slow
def test_resume_after_a_killed_run_gives_the_uninterrupted_result(dozen_birds, tmp_path, capsys):
    args = ["build-splits", "bird", "--root", dozen_birds, "--num-id", "8", "--epochs", "4", *TINY]
    assert run_cli(*args, "--out", tmp_path / "ref", capsys=capsys)[0] == 0
    checkpoint = tmp_path / "cut" / "bird.work" / "checkpoint.pt"
    process = subprocess.Popen([sys.executable, "-m", "fgood_bench", *map(str, args), "--out", str(tmp_path / "cut")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not (tmp_path / "cut" / "bird").exists()
    status, _, err = run_cli(*args, "--out", tmp_path / "cut", "--resume", capsys=capsys)
    assert status == 0, err
    for name in ("ranking.csv", "predictions.npz"):
        assert (tmp_path / "cut" / "bird" / name).read_bytes() == (tmp_path / "ref" / "bird" / name).read_bytes()
    status, _, err = run_cli(*args, "--lr", "0.5", "--out", tmp_path / "cut", "--resume", "--overwrite", capsys=capsys)
    assert status == 2 and "was written with other training settings" in err


def test_a_missing_test_split_is_not_replaced_by_val(tmp_path, capsys):
    root = synthetic.write_sample("fgvc_aircraft", tmp_path / "data")
    (root / "data" / "images_variant_test.txt").unlink()
    status, _, err = run_cli("build-splits", "aircraft", "--root", root, "--out", tmp_path / "out", "--num-id", "2", *TINY, capsys=capsys)
    assert status == 2 and "the test split is needed and absent" in err and "images_variant_test.txt not found" in err
    cars = synthetic.write_sample("stanford_cars", tmp_path / "cars")
    (cars / "cars_test_annos_withlabels.mat").unlink()
    status, _, err = run_cli("build-splits", "car", "--root", cars, "--out", tmp_path / "out", "--num-id", "2", *TINY, capsys=capsys)
    assert status == 2 and "the test split is needed and absent (test labels not found" in err


def test_bad_arguments_and_outputs_fail_before_any_work(dozen_birds, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    status, _, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "a_file", "--num-id", "8",
                             "--epochs", "1", *TINY, capsys=capsys)
    assert status == 2 and "a_file: not a folder" in err and err.count("\n") == 1
    status, out, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "o", "--batch-size", "0",
                               capsys=capsys)
    assert status == 2 and not out and err.count("\n") == 1  # one line, no usage text
    assert err.startswith("fgood-bench: error: build-splits: argument --batch-size: must be a positive integer, got 0")


def test_unreadable_training_image_is_one_line(dozen_birds, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(dozen_birds, data / "CUB_200_2011")
    broken = next((data / "CUB_200_2011" / "images").rglob("*.jpg"))
    broken.unlink()
    broken.write_bytes(b"not a jpeg")
    status, _, err = run_cli("build-splits", "bird", "--root", data, "--out", tmp_path / "out", "--num-id", "8",
                             "--epochs", "1", *TINY[:-2], "--workers", "1", capsys=capsys)
    assert status == 2 and err.count("\n") == 1
    assert err.startswith(f"fgood-bench: error: {broken}: unreadable image")


def test_resume_refuses_other_training_data(tmp_path, capsys):
    minc = synthetic.write_sample("minc2500", tmp_path / "minc")
    args = ["build-splits", "--dataset", "minc2500", "--num-id", "2", "--root", minc, "--out", tmp_path / "out", "--epochs", "1", *TINY]
    assert run_cli(*args, capsys=capsys)[0] == 0
    lines = (minc / "labels" / "train1.txt").read_text().splitlines()
    replace_file(minc / "labels" / "train1.txt", "\n".join(lines[1:]) + "\n")
    status, _, err = run_cli(*args, "--resume", "--overwrite", capsys=capsys)  # the benchmark exists: replacing it is explicit
    assert status == 2 and "was written for other training images or labels" in err


def test_given_classes_build_the_inet_benchmarks(full_imagenet_val, tmp_path, capsys):
    inet = Path(__file__).parents[1] / "manifests" / "inet"
    status, out, err = run_cli("build-splits", "--dataset", "imagenet", "--name", "inet-a", "--root", full_imagenet_val,
                               "--out", tmp_path, "--id-classes", inet / "inet_a.tsv", "--ood-classes", inet / "inet_b.tsv",
                               capsys=capsys)
    assert status == 0, err
    from fgood_bench.manifests.manifest import Manifest

    manifest = Manifest.load(out.strip())
    assert manifest.data["selection"] == "given" and manifest.data["num_id"] == 50
    assert {name: entry["count"] for name, entry in manifest.data["splits"].items()} == {"id_train": 100, "id_test": 2500, "ood_test": 2500}
    assert "n07697313" in manifest.id_class_names and "n07831146" in {c["name"] for c in manifest.data["ood_classes"]}
    assert not (tmp_path / "inet-a" / "ranking.csv").exists()
    status, _, err = run_cli("build-splits", "--dataset", "imagenet", "--root", full_imagenet_val, "--out", tmp_path,
                             "--id-classes", inet / "inet_a.tsv", "--ood-classes", inet / "inet_a.tsv", capsys=capsys)
    assert status == 2 and "is also an ID class" in err


FLOWERS_META = Path(__file__).parent / "data" / "reference-meta" / "flowers102"


def test_flower_table_3_count_needs_the_official_test_split():
    """Table 3: 5,878 ID training images. Not the official train (900) or train + val (1,800) of 90
    classes; the official test split (6,149) minus 12 held-out classes holding 271 test images is
    possible, and only with small classes (the 12 smallest hold 245, a mean class 723)."""
    from scipy.io import loadmat

    labels = loadmat(FLOWERS_META / "imagelabels.mat")["labels"].ravel().astype(int)
    ids = {k: loadmat(FLOWERS_META / "setid.mat")[k].ravel().astype(int) for k in ("trnid", "valid", "tstid")}
    per_class = {k: np.bincount(labels[v - 1], minlength=103)[1:] for k, v in ids.items()}
    assert (len(ids["trnid"]), len(ids["valid"]), len(ids["tstid"])) == (1020, 1020, 6149)
    assert set(per_class["trnid"]) == set(per_class["valid"]) == {10}
    assert 90 * 10 != 5878 and 90 * 20 != 5878
    held_out_test = 6149 - 5878
    assert held_out_test == 271
    smallest = np.sort(per_class["tstid"])
    assert smallest[:12].sum() == 245 <= held_out_test <= smallest[-12:].sum()
    assert 12 * per_class["tstid"].mean() > 2.5 * held_out_test


def test_flower_paper_protocol_is_the_default(full_flowers, tmp_path, capsys):
    """--split-protocol paper (default for flower): the ranking classifier and id_train take the
    official test split, ranking, id_test and ood_test the train + val images; official: train / test."""
    from scipy.io import loadmat

    root = full_flowers  # the official imagelabels.mat and setid.mat
    index = load_dataset("flowers102", root)
    labels = loadmat(FLOWERS_META / "imagelabels.mat")["labels"].ravel().astype(int) - 1
    tests_per_class = np.bincount(labels[loadmat(FLOWERS_META / "setid.mat")["tstid"].ravel().astype(int) - 1], minlength=102)
    worst = set(np.argsort(tests_per_class, kind="stable")[:12].tolist())  # the 12 smallest classes rank last
    for protocol, splits in (("paper", ("train", "val")), ("official", ("test",))):
        paths = [p for s in splits for p in index.split(s).column("path").to_pylist()]
        truth = np.concatenate([index.split(s).column("label").to_numpy() for s in splits])
        logits = np.where(np.arange(102) == truth[:, None], 0.0, -5.0)  # correct and confident
        logits[np.isin(truth, list(worst))] = 0.0  # uniform: wrong and uncertain
        np.savez(tmp_path / f"{protocol}.npz", paths=np.array(paths), logits=logits.astype(np.float32))
    status, _, err = run_cli("build-splits", "flower", "--root", root, "--out", tmp_path / "paper",
                             "--predictions", tmp_path / "paper.npz", capsys=capsys)
    assert status == 0, err
    assert "not the paper's" not in err  # the real Flowers-102 class count: Table 3's 102
    manifest = json.loads((tmp_path / "paper" / "flower" / "manifest.json").read_text())
    assert {c["index"] for c in manifest["ood_classes"]} == worst
    assert manifest["train_splits"] == ["test"] and manifest["eval_splits"] == ["train", "val"]
    assert manifest["eval_split"] == "train+val" and manifest["split_protocol"]["name"] == "paper"
    counts = {name: entry["count"] for name, entry in manifest["splits"].items()}
    assert counts == {"id_train": 6149 - 245, "id_test": 90 * 20, "ood_test": 12 * 20}
    status, _, err = run_cli("build-splits", "flower", "--root", root, "--out", tmp_path / "official", "--split-protocol",
                             "official", "--predictions", tmp_path / "official.npz", capsys=capsys)
    assert status == 0, err
    manifest = json.loads((tmp_path / "official" / "flower" / "manifest.json").read_text())
    assert manifest["train_splits"] == ["train"] and manifest["eval_split"] == "test"
    assert manifest["split_protocol"]["name"] == "official"
    counts = {name: entry["count"] for name, entry in manifest["splits"].items()}
    assert counts == {"id_train": 900, "id_val": 900, "id_test": 6149 - 245, "ood_test": 245}
    status, _, err = run_cli("build-splits", "flower", "--root", root, "--out", tmp_path / "bad", "--split-protocol",
                             "official", "--predictions", tmp_path / "paper.npz", capsys=capsys)
    assert status == 2 and "is not an image of the evaluation split" in err


def test_the_output_is_locked_for_the_whole_build(dozen_birds, tmp_path, capsys, monkeypatch):
    """Issue 22 item 5: OUT/NAME is claimed when build-splits starts, not when it writes: a second build
    into the same target, started while the first is still working, is refused at once."""
    import fgood_bench.ranking.build as build

    write_predictions(tmp_path / "preds.npz", dozen_birds, {c: 0.5 + c / 30 for c in range(12)})
    args = ["build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "out", "--num-id", "8",
            "--predictions", tmp_path / "preds.npz"]
    real_read, second = build.read_predictions, []

    def read_while_another_build_starts(*a, **k):  # the first build's long work
        second.append(run_cli(*args, capsys=capsys))
        return real_read(*a, **k)

    monkeypatch.setattr(build, "read_predictions", read_while_another_build_starts)
    status, _, err = run_cli(*args, capsys=capsys)
    assert status == 0, err
    assert second[0][0] == 2 and "another fgood-bench run is writing there" in second[0][2]
    assert (tmp_path / "out" / "bird" / "manifest.json").is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bird"]  # the lock file is gone
