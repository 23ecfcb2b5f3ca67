"""Fault injection: bad targets, kills, concurrent runs, full disks and bad inputs (issue #12).

Every case asserts what a user must be able to rely on: exit status 2 with exactly one line on
stderr and no traceback, no file changed outside the command's --out (checksums before and
after), and no partial or empty folder left behind.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli
from fgood_bench.outputs import MARKER, output_folder, run_folder
from fgood_bench.tools.models import build_model, save_classifier

TINY = ["--arch", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size", "8", "--workers", "0"]


def tree(folder: Path) -> dict[str, str]:
    """Every file (and symlink target) under ``folder`` with its sha256."""
    result = {}
    for path in sorted(Path(folder).rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            result[key] = "-> " + os.readlink(path)
        elif path.is_file():
            result[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            result[key] = "dir"
    return result


def refused(result, *expected: str) -> str:
    """A one-line refusal: exit 2, one stderr line, no traceback; returns the line."""
    status, _, err = result
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("fgood-bench: error: ") and "Traceback" not in err, err
    for text in expected:
        assert text in err, err
    return err


def no_leftovers(folder: Path) -> None:
    """No partial, retired or lock files anywhere under ``folder``."""
    names = [p.name for p in Path(folder).rglob("*")]
    assert not [n for n in names if ".partial" in n or ".old-" in n or n.endswith(".lock")], names


@pytest.fixture
def world(dozen_birds, bird_benchmark, tmp_path):
    """A private copy of the shared bird benchmark (K=8) and places set, a checkpoint, fake evaluate runs."""
    base = tmp_path / "w"
    shutil.copytree(bird_benchmark["base"] / "out", base / "benchmarks")
    torch.manual_seed(0)
    names = json.loads((base / "benchmarks" / "bird" / "manifest.json").read_text())["id_classes"]
    save_classifier(base / "ck.pt", build_model("resnet18", 8), "resnet18", [c["name"] for c in names])
    for run in ("RUN1", "RUN2"):
        folder = base / "runs" / run
        folder.mkdir(parents=True)
        (folder / MARKER).write_text(json.dumps({"written_by": "fgood-bench", "kind": "evaluate"}) + "\n")
        (folder / "results.json").write_text(json.dumps(fake_results()))
        (folder / "checkpoint.pt").write_bytes(b"precious weights")
    return {"base": base, "root": dozen_birds, "places": bird_benchmark["places"], "bench": base / "benchmarks" / "bird"}


def fake_results() -> dict:
    metric = {"fpr95": 0.5, "auroc": 0.5, "aupr_in": 0.5, "aupr_out": 0.5}
    return {"toolkit": "fgood-bench", "convention": "c", "metrics_reported": list(metric), "benchmark": {"name": "bird"},
            "scorers": ["msp"], "base_rate": "none", "id_accuracy": 0.5, "metrics": {"holdout": {"msp": metric}}}


# ------------------------------------------------------------------ data loss: the cases of issue #12
def test_report_never_replaces_runs_or_files(world, capsys):
    base = world["base"]
    runs = [base / "runs" / "RUN1", base / "runs" / "RUN2"]
    before = tree(base)
    refused(run_cli("report", *runs, "--out", base / "runs", capsys=capsys), "did not create")
    refused(run_cli("report", *runs, "--out", runs[0], capsys=capsys), "holds an evaluate output")
    (base / "notes.txt").write_text("my notes")
    before["notes.txt"] = tree(base)["notes.txt"]
    refused(run_cli("report", *runs, "--out", base / "notes.txt", capsys=capsys), "not a folder")
    os.mkfifo(base / "fifo")  # a device-like node: never turned into a folder
    refused(run_cli("report", *runs, "--out", base / "fifo", capsys=capsys), "not a folder")
    assert (base / "fifo").is_fifo()
    (base / "fifo").unlink()
    assert tree(base) == before
    # a report folder of its own: written, refused again, replaced with --overwrite
    assert run_cli("report", *runs, "--out", base / "summary", capsys=capsys)[0] == 0
    refused(run_cli("report", *runs, "--out", base / "summary", capsys=capsys), "--overwrite")
    assert run_cli("report", *runs, "--out", base / "summary", "--overwrite", capsys=capsys)[0] == 0
    assert sorted(p.name for p in (base / "summary").iterdir()) == [MARKER, "report.csv", "report.json", "report.md"]
    no_leftovers(base)


def test_manifest_folders_are_never_replaced_by_another_command(world, capsys):
    base, bench = world["base"], world["bench"]
    before = tree(base)
    refused(run_cli("export", bench, "--format", "openood", "--out", base / "benchmarks", capsys=capsys),
            "holds a benchmark output", "not replaced")
    refused(run_cli("export", bench, "--format", "openood", "--out", base / "benchmarks", "--overwrite", capsys=capsys),
            "holds a benchmark output")
    refused(run_cli("build-ood-set", "imagefolder", "--root", world["places"], "--out", base / "benchmarks", "--name", "bird",
                    "--overwrite", capsys=capsys), "holds a benchmark output")
    foreign = base / "D" / "bird"
    foreign.mkdir(parents=True)
    (foreign / "thesis.tex").write_text("years of work")
    before = tree(base)
    preds = world["bench"] / "predictions.npz"
    refused(run_cli("build-splits", "bird", "--root", world["root"], "--out", base / "D", "--num-id", "8",
                    "--predictions", preds, "--overwrite", capsys=capsys), "did not create")
    (base / "plain").write_text("x")
    before = tree(base)
    refused(run_cli("build-splits", "bird", "--root", world["root"], "--out", base / "plain", "--num-id", "8",
                    "--predictions", preds, capsys=capsys), "not a folder")
    assert tree(base) == before
    no_leftovers(base)


def test_same_kind_needs_overwrite_and_replaces_whole(world, capsys):
    base = world["base"]
    args = ["build-ood-set", "places365", "--root", world["places"], "--out", base / "ood", "--size", "3"]
    assert run_cli(*args, capsys=capsys)[0] == 0
    first = tree(base / "ood")
    refused(run_cli(*args, "--seed", "1", capsys=capsys), "holds an earlier ood_set output", "--overwrite")
    assert tree(base / "ood") == first
    assert run_cli(*args, "--seed", "1", "--overwrite", capsys=capsys)[0] == 0
    assert tree(base / "ood") != first and sorted(os.listdir(base / "ood")) == ["places365"]
    no_leftovers(base / "ood")


def test_a_kill_between_the_renames_is_repaired_by_the_next_run(world, capsys):
    """The state a kill leaves mid-replacement: the output moved aside, a half-written staging folder."""
    base = world["base"]
    args = ["build-ood-set", "places365", "--root", world["places"], "--out", base / "ood", "--size", "3"]
    assert run_cli(*args, capsys=capsys)[0] == 0
    published = tree(base / "ood" / "places365")
    (base / "ood" / "places365").replace(base / "ood" / ".places365.old-abc123")
    (base / "ood" / ".places365.partial-def456" / "splits").mkdir(parents=True)
    (base / "ood" / ".places365.partial-def456" / MARKER).write_text("{}")
    refused(run_cli(*args, capsys=capsys), "holds an earlier ood_set output")  # restored first, then refused
    assert tree(base / "ood" / "places365") == published
    assert sorted(os.listdir(base / "ood")) == ["places365"]


def test_a_second_run_into_the_same_out_refuses(world, capsys):
    base = world["base"]
    with run_folder(base / "t", "train"):
        before = tree(base)
        refused(run_cli("train", "--method", "standard", "--manifest", world["bench"], "--root", world["root"],
                        "--out", base / "t", "--epochs", "1", *TINY, capsys=capsys), "another fgood-bench run")
        assert tree(base) == before
    with output_folder(base / "ood" / "places365", "ood_set"):
        refused(run_cli("build-ood-set", "places365", "--root", world["places"], "--out", base / "ood", capsys=capsys),
                "another fgood-bench run")


# --------------------------------------------------------------------------- full disk, interrupts
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_during_train_keeps_the_previous_checkpoint(world, capsys, monkeypatch):
    """The disk fills while the second epoch's checkpoint is written: one line, no partial file,
    the first epoch's checkpoint intact (and --resume-able)."""
    base = world["base"]
    checkpoint = base / "t" / "checkpoint.pt"
    real_save, saved = torch.save, []

    def fill_on_second_save(obj, handle, *a, **k):
        if saved:
            saved.append(checkpoint.read_bytes())
            real_save({"half": torch.zeros(1000)}, handle)
            _enospc()
        saved.append(None)
        real_save(obj, handle, *a, **k)

    monkeypatch.setattr(torch, "save", fill_on_second_save)
    refused(run_cli("train", "--method", "standard", "--manifest", world["bench"], "--root", world["root"], "--out", base / "t",
                    "--epochs", "2", *TINY[:-3], "16", *TINY[-2:], capsys=capsys), "No space left on device", "checkpoint.pt")
    assert checkpoint.read_bytes() == saved[-1]
    assert torch.load(checkpoint, weights_only=True)["epochs_done"] == 1
    assert sorted(os.listdir(base / "t")) == [MARKER, "checkpoint.pt", "metrics.jsonl"]  # no partial file, no classifier


def test_full_disk_and_interrupts_during_evaluate(world, capsys, monkeypatch):
    import pyarrow.parquet as pq

    base = world["base"]
    before = tree(base)
    args = ["evaluate", "--checkpoint", base / "ck.pt", "--manifest", world["bench"], "--root", world["root"],
            "--out", base / "ev", "--image-size", "32", "--workers", "0", "--scorers", "msp"]
    monkeypatch.setattr(pq, "write_table", lambda table, where, *a, **k: (Path(where).write_bytes(b"PAR1" * 99), _enospc()))
    refused(run_cli(*args, capsys=capsys), "No space left on device")
    assert tree(base) == before  # no partial file, no empty --out
    monkeypatch.undo()

    import fgood_bench.evaluation.evaluate as evaluation

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation, "forward_outputs", interrupted)
    assert run_cli(*args, capsys=capsys)[0] == 130
    assert tree(base) == before


# ------------------------------------------------- failed commands leave no empty folder (#16 item 8)
def test_failed_commands_leave_no_output_folder(world, capsys, monkeypatch):
    base = world["base"]
    before = tree(base)
    refused(run_cli("train", "--method", "mixupoe", "--manifest", world["bench"], "--root", world["root"],
                    "--outliers", base / "benchmarks" / "places365", "--outlier-root", world["places"], "--out", base / "new" / "t", *TINY, capsys=capsys), "--init")
    refused(run_cli("evaluate", "--checkpoint", base / "nothing.pt", "--manifest", world["bench"], "--root", world["root"],
                    "--out", base / "new" / "ev", *TINY[:2], capsys=capsys), "nothing.pt")
    import fgood_bench.ranking.build as build

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "train_classifier", interrupted)
    assert run_cli("build-splits", "bird", "--root", world["root"], "--out", base / "new" / "b", "--num-id", "8",
                   "--epochs", "1", *TINY, capsys=capsys)[0] == 130
    assert tree(base) == before


# --------------------------------------------------- rerun without --resume refuses (#16 item 7)
def test_rerun_of_an_interrupted_train_needs_resume_or_restart(world, capsys):
    base = world["base"]
    args = ["train", "--method", "standard", "--manifest", world["bench"], "--root", world["root"], "--out", base / "t",
            "--epochs", "1", *TINY]
    assert run_cli(*args, capsys=capsys)[0] == 0
    refused(run_cli(*args, capsys=capsys), "the run finished", "--overwrite")
    (base / "t" / "classifier.pt").unlink()  # as a run killed after its first checkpoint leaves it
    before = tree(base)
    refused(run_cli(*args, capsys=capsys), "--resume", "--restart")
    assert tree(base) == before
    assert run_cli(*args, "--restart", capsys=capsys)[0] == 0
    assert (base / "t" / "classifier.pt").is_file()
    no_leftovers(base / "t")


def test_rerun_of_an_interrupted_build_splits_needs_resume_or_restart(world, capsys):
    base = world["base"]
    work = base / "b" / "bird.work"
    with run_folder(work, "build-splits training"):
        (work / "checkpoint.pt").write_bytes(b"an interrupted training")
    before = tree(base)
    refused(run_cli("build-splits", "bird", "--root", world["root"], "--out", base / "b", "--num-id", "8", "--epochs", "1",
                    *TINY, capsys=capsys), "--resume", "--restart")
    assert tree(base) == before


# ----------------------------------------------------------- exact-step resume (issue #12 item 5)
@pytest.mark.slow
@pytest.mark.parametrize("cut", [4])  # mid-way through the second epoch (3 steps per epoch)
def test_resume_from_any_step_gives_bit_identical_weights(world, cut):
    """``train --epochs 2 --max-steps CUT`` then ``--resume``: the weights of an uninterrupted run."""
    from fgood_bench.manifests.manifest import Manifest
    from fgood_bench.tools.loop import LoopOptions, Outliers, TrainConfig, TrainData, train_classifier
    from fgood_bench.tools.runtime import Runtime
    from fgood_bench.training.methods import Hyper, MethodObjective

    benchmark = Manifest.load(world["bench"])
    rows = benchmark.split("id_train")
    places = Manifest.load(world["base"] / "benchmarks" / "places365")
    outliers = Outliers(places.dataset_root(world["places"]), places.split("ood_test").paths[:12], 4)
    config = TrainConfig(arch="resnet18", weights=None, epochs=2, batch_size=16, image_size=32, workers=0)

    def run(work: Path, max_steps: int | None, resume: bool):
        torch.manual_seed(0)
        model = build_model("resnet18", 8)
        work.mkdir(exist_ok=True)
        data = TrainData(benchmark.dataset_root(world["root"]), rows.paths, rows.labels)
        return train_classifier(model, data, config, Runtime(), work, objective=MethodObjective("mixupoe", Hyper(), 8),
                                outliers=outliers, options=LoopOptions(resume=resume, progress=False, max_steps=max_steps))

    whole = run(world["base"] / "whole", None, False).state_dict()
    run(world["base"] / "cut", cut, False)
    assert torch.load(world["base"] / "cut" / "checkpoint.pt", weights_only=True)["step"] == cut
    resumed = run(world["base"] / "cut", None, True).state_dict()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


# ------------------------------------------------------------- split leakage (issue #12 item 6)
def leak(bench: Path, line: str) -> None:
    """Append ``line`` to the benchmark's id_test split, with the manifest's count and sha256 updated."""
    split = bench / "splits" / "id_test.txt"
    split.write_bytes(split.read_bytes() + line.encode())
    manifest = json.loads((bench / "manifest.json").read_text())
    manifest["splits"]["id_test"].update(count=manifest["splits"]["id_test"]["count"] + 1,
                                         sha256=hashlib.sha256(split.read_bytes()).hexdigest())
    (bench / "manifest.json").write_text(json.dumps(manifest, indent=2))


def test_splits_sharing_an_image_are_refused(world, capsys):
    bench, root = world["bench"], world["root"]
    train_line = (bench / "splits" / "id_train.txt").read_text().splitlines()[1]
    leak(bench, train_line + "\n")
    before = tree(world["base"])
    status, out, _ = run_cli("verify", bench, "--root", root, capsys=capsys)
    assert status == 1 and f"id_test {train_line.split(chr(9))[0]} and id_train {train_line.split(chr(9))[0]}" in out
    refused(run_cli("train", "--method", "standard", "--manifest", bench, "--root", root, "--out", world["base"] / "t",
                    *TINY, capsys=capsys), "split leak", "id_train")
    refused(run_cli("evaluate", "--checkpoint", world["base"] / "ck.pt", "--manifest", bench, "--root", root,
                    "--out", world["base"] / "ev", *TINY[:2], capsys=capsys), "split leak")
    assert tree(world["base"]) == before


def test_verify_images_finds_the_same_content_under_two_paths(world, tmp_path, capsys):
    from PIL import Image

    bench, root = world["bench"], tmp_path / "unique"
    shutil.copytree(world["root"], root)
    for k, image in enumerate(sorted(root.rglob("*.jpg"))):  # the fixture's images repeat: make each unique
        image.unlink()
        Image.new("RGB", (8, 8), (k % 256, k // 256, 7)).save(image, format="PNG")
    train_path, label, name = (bench / "splits" / "id_train.txt").read_text().splitlines()[1].split("\t")
    shutil.copyfile(root / train_path, root / "images" / "copy_of_a_train_image.jpg")
    leak(bench, f"images/copy_of_a_train_image.jpg\t{label}\t{name}\n")
    status, out, _ = run_cli("verify", bench, "--root", root, capsys=capsys)
    assert status == 0, out  # different paths: only the content tells
    status, out, _ = run_cli("verify", bench, "--root", root, "--images", "--workers", "1", capsys=capsys)
    assert status == 1 and out.count("split leak") == 1, out
    assert f"id_test images/copy_of_a_train_image.jpg and id_train {train_path} are the same content" in out


# --------------------------------------------- paths that loop or leave the root (issue #12 items 7-9)
def image_folder(root: Path, names: list[str]) -> Path:
    from PIL import Image

    for k, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (k, 0, 0)).save(root / name, format="PNG")
    return root


def test_verify_images_reads_contents_only_where_they_are_compared(tmp_path, monkeypatch, capsys):
    """A one-split set without recorded hashes has nothing to compare contents with: verify
    --images decodes its images but does not read each file again to hash it."""
    from fgood_bench.manifests import verify

    root = image_folder(tmp_path / "folder", ["classA/0.png", "classA/1.png"])
    assert run_cli("build-ood-set", "imagefolder", "--root", root, "--out", tmp_path / "plain", capsys=capsys)[0] == 0
    assert run_cli("build-ood-set", "imagefolder", "--root", root, "--out", tmp_path / "hashed", "--hash-images",
                   capsys=capsys)[0] == 0
    hashed = []
    monkeypatch.setattr(verify, "sha256_files", lambda root, paths: hashed.append(len(paths)) or ["x"] * len(paths))
    assert run_cli("verify", tmp_path / "plain" / "imagefolder", "--root", root, "--images", capsys=capsys)[0] == 0
    assert hashed == []
    status, out, _ = run_cli("verify", tmp_path / "hashed" / "imagefolder", "--root", root, "--images", capsys=capsys)
    assert hashed == [2] and status == 1  # recorded hashes are compared (here with the stand-in's "x")


def test_image_folder_links_are_not_followed_and_each_file_counts_once(tmp_path, capsys):
    root = image_folder(tmp_path / "folder", ["classA/0.png", "classA/1.png"])
    os.symlink("..", root / "classA" / "loop")  # 2 images used to become 82 rows
    assert run_cli("build-ood-set", "imagefolder", "--root", root, "--out", tmp_path / "o", capsys=capsys)[0] == 0
    rows = (tmp_path / "o" / "imagefolder" / "splits" / "ood_test.txt").read_text().splitlines()[1:]
    assert [r.split("\t")[0] for r in rows] == ["classA/0.png", "classA/1.png"]
    status, out, _ = run_cli("inspect", "imagefolder", "--root", root, capsys=capsys)
    assert status == 0 and "all              2" in out

    outside = image_folder(tmp_path / "outside", ["secret.png"])
    cases = {"classA/escape": (outside, "outside the image folder"), "classB": (root / "classA", "a class folder that is a symbolic link")}
    for link, (target, message) in cases.items():
        os.symlink(target, root / link)
        before = tree(tmp_path)
        refused(run_cli("inspect", "imagefolder", "--root", root, capsys=capsys), message)
        refused(run_cli("build-ood-set", "imagefolder", "--root", root, "--out", tmp_path / "o2", capsys=capsys), message)
        assert tree(tmp_path) == before
        (root / link).unlink()
    os.symlink(outside / "secret.png", root / "classA" / "2.png")  # a file link that leaves the root
    refused(run_cli("inspect", "imagefolder", "--root", root, capsys=capsys), "leaves the dataset root")
    refused(run_cli("build-ood-set", "imagefolder", "--root", root, "--out", tmp_path / "o2", capsys=capsys), "leaves the dataset root")
    assert not (tmp_path / "o2").exists()


def test_unlistable_roots_and_latin1_names_are_one_line(tmp_path, capsys):
    os.symlink("self", tmp_path / "self")
    refused(run_cli("inspect", "imagefolder", "--root", tmp_path / "self", capsys=capsys), "Too many levels of symbolic links")
    refused(run_cli("inspect", "imagefolder", "--root", tmp_path / ("x" * 300), capsys=capsys), "File name too long")
    root = image_folder(tmp_path / "latin", ["c/ok.png", "c/cafe.png"])
    os.rename(root / "c" / "cafe.png", os.fsencode(root / "c") + b"/caf\xe9.png")  # Latin-1, not UTF-8
    before = tree(tmp_path)
    for args in (["inspect"], ["build-ood-set", "--out", tmp_path / "o"]):
        refused(run_cli(args[0], "imagefolder", "--root", root, *args[1:], capsys=capsys), "c/caf\\xe9.png", "not UTF-8")
    assert tree(tmp_path) == before


def private_root(world, tmp_path: Path) -> Path:
    """A copy of the bird dataset that a test may change; returns its canonical root."""
    shutil.copytree(world["root"], tmp_path / "birds" / "CUB_200_2011")
    return tmp_path / "birds" / "CUB_200_2011"


def test_files_outside_the_root_are_never_read_or_exported(world, tmp_path, capsys):
    from fgood_bench.errors import FgoodError
    from fgood_bench.manifests.loading import load_split

    root, bench, base = private_root(world, tmp_path), world["bench"], world["base"]
    secret = tmp_path / "etc"
    secret.mkdir()
    (secret / "hostname").write_text("my-machine\n")
    os.symlink(secret, root / "images" / "escape")  # the dataset holds images/escape -> /etc
    label_0 = json.loads((bench / "manifest.json").read_text())["id_classes"][0]["name"]
    leak(bench, f"images/escape/hostname\t0\t{label_0}\n")
    before = tree(tmp_path) | tree(base)
    for args in (["export", bench, "--format", "hf", "--root", root, "--out", base / "hf"],
                 ["verify", bench, "--root", root],
                 ["evaluate", "--checkpoint", base / "ck.pt", "--manifest", bench, "--root", root, "--out", base / "ev", *TINY[:2]],
                 ["audit-leakage", "--benchmark", bench, "--root", root, "--out", base / "audit"]):
        refused(run_cli(*args, capsys=capsys), "images/escape/hostname: image path leaves the dataset root", str(secret))
    with pytest.raises(FgoodError, match="leaves the dataset root"):
        load_split(bench, "id_test", root)
    assert tree(tmp_path) | tree(base) == before


def test_outputs_never_go_into_the_dataset_folder(world, tmp_path, sample, capsys):
    root, preds = private_root(world, tmp_path), world["bench"] / "predictions.npz"
    webvision = sample("webvision")
    before = tree(tmp_path)
    for args, dataset in ((["build-splits", "bird", "--root", root, "--num-id", "8", "--predictions", preds], root),
                          (["build-ood-set", "cub", "--root", root], root),
                          (["filter-outliers", "bird", "--source", "webvision", "--root", webvision], webvision)):
        for out in (dataset, dataset / "images"):
            refused(run_cli(*args, "--out", out, capsys=capsys), f"--out {out}: inside the dataset folder")
    assert tree(tmp_path) == before


def test_export_checks_that_every_image_decodes(world, tmp_path, capsys):
    root, bench, base = private_root(world, tmp_path), world["bench"], world["base"]
    name = (bench / "splits" / "id_test.txt").read_text().splitlines()[1].split("\t")[0]
    (root / name).unlink()
    (root / name).write_text("not an image")
    before = tree(base)
    refused(run_cli("export", bench, "--format", "hf", "--root", root, "--out", base / "hf", capsys=capsys),
            name, "not an image that decodes")
    assert tree(base) == before


def test_build_splits_refuses_missing_images_and_metadata_leaving_the_root(world, tmp_path, capsys):
    root, preds = private_root(world, tmp_path), world["bench"] / "predictions.npz"
    args = ["build-splits", "bird", "--root", root, "--out", tmp_path / "out", "--num-id", "8", "--predictions", preds]
    train_image = next(line.split()[1] for line in (root / "images.txt").read_text().splitlines() if line.split()[1].endswith("_0001.jpg"))
    (root / "images" / train_image).unlink()  # a train image: the predictions cover the test split only
    refused(run_cli(*args, capsys=capsys), train_image, "is missing")
    assert not (tmp_path / "out").exists()
    shutil.copyfile(root / "images" / train_image.replace("_0001", "_0002"), root / "images" / train_image)
    images = (root / "images.txt").read_text()
    (root / "images.txt").write_text(images.replace(train_image, train_image.split("/")[0] + "/../../../outside.jpg"))
    before = tree(tmp_path)
    for command in (args, ["inspect", "cub", "--root", root], ["build-ood-set", "cub", "--root", root, "--out", tmp_path / "out"]):
        refused(run_cli(*command, capsys=capsys), "outside.jpg", "outside the dataset root")
    assert tree(tmp_path) == before


# ------------------------------------------------ manifests and split files (issue #12 items 10, 11)
def rewrite_split(bench: Path, split: str, content: bytes) -> None:
    """Replace a split file, with the manifest's sha256 updated (as a careless editor would)."""
    (bench / "splits" / f"{split}.txt").write_bytes(content)
    manifest = json.loads((bench / "manifest.json").read_text())
    manifest["splits"][split]["sha256"] = hashlib.sha256(content).hexdigest()
    (bench / "manifest.json").write_text(json.dumps(manifest))


def edit_manifest(bench: Path, change) -> None:
    manifest = json.loads((bench / "manifest.json").read_text())
    change(manifest)
    (bench / "manifest.json").write_text(json.dumps(manifest))


def _same_label(m):
    m["id_classes"][1]["label"] = 0


def _same_name(m):
    m["id_classes"][1]["name"] = m["id_classes"][0]["name"]


def _ood_label_in_train(bench: Path) -> None:
    lines = (bench / "splits" / "id_train.txt").read_text().splitlines(keepends=True)
    path, _, name = lines[1].rstrip("\n").split("\t")
    rewrite_split(bench, "id_train", "".join([lines[0], f"{path}\t-1\t{name}\n", *lines[2:]]).encode())


def _swap_id_field(key: str):
    """Swap ``key`` (name or label) of ID classes 0 and 1 in the manifest: the split rows now disagree."""
    def change(m):
        first, second = m["id_classes"][0], m["id_classes"][1]
        first[key], second[key] = second[key], first[key]
    return lambda bench: edit_manifest(bench, change)


def _relabel_row(bench: Path, split: str, label: str, name: str | None = None) -> None:
    """Give the first row of ``split`` another label (and class name), the manifest's sha256 updated."""
    lines = (bench / "splits" / f"{split}.txt").read_text().splitlines(keepends=True)
    path, _, old_name = lines[1].rstrip("\n").split("\t")
    rewrite_split(bench, split, "".join([lines[0], f"{path}\t{label}\t{name or old_name}\n", *lines[2:]]).encode())


def _id_name(bench: Path, label: int) -> str:
    return next(c["name"] for c in json.loads((bench / "manifest.json").read_text())["id_classes"] if c["label"] == label)


OOD_ROWS = "which disagree with the manifest: ood_test rows have label -1 and a class of ood_classes"
BAD_MANIFESTS = {
    "same label twice": (lambda b: edit_manifest(b, _same_label), "label 0 is given twice"),
    "same class name twice": (lambda b: edit_manifest(b, _same_name), "is given twice"),
    "200k nested brackets": (lambda b: (b / "manifest.json").write_text("[" * 200_000 + "]" * 200_000), "nested too deeply"),
    "5,000-digit integer": (lambda b: (b / "manifest.json").write_text('{"schema_version": ' + "9" * 5000 + "}"),
                            "not a readable JSON manifest"),
    "UTF-16 split file": (lambda b: rewrite_split(b, "id_test", (b / "splits" / "id_test.txt").read_text().encode("utf-16")),
                          "not UTF-8 text"),
    "Latin-1 split file": (lambda b: rewrite_split(b, "id_test", (b / "splits" / "id_test.txt").read_bytes() + "caf\xe9.jpg\t0\tBird_1\n".encode("latin-1")),
                           "not UTF-8 text"),
    "a folder as split file": (lambda b: ((b / "splits" / "id_test.txt").unlink(), (b / "splits" / "id_test.txt").mkdir()),
                               "a folder where the manifest lists a split file"),
    "label -1 in id_train": (_ood_label_in_train, "label -1 (OOD) in the ID split id_train"),
    # hand edits that keep every sha256 right (issue: a hand-edited manifest passed verify and loaded)
    "ID names 0 and 1 swapped": (_swap_id_field("name"), "which disagree with the manifest's id_classes (label 0 is "),
    "ID labels 0 and 1 swapped": (_swap_id_field("label"), "which disagree with the manifest's id_classes (label 0 is "),
    "an ID row relabelled": (lambda b: _relabel_row(b, "id_test", "1"), "id_test.txt: line 2 (images/"),
    "an ID label in ood_test": (lambda b: _relabel_row(b, "ood_test", "0", _id_name(b, 0)), OOD_ROWS),
    "an ID class in ood_test": (lambda b: _relabel_row(b, "ood_test", "-1", _id_name(b, 0)), OOD_ROWS),
    "ood_classes cut down, given classes": (lambda b: edit_manifest(b, lambda m: (m.update(selection="given"), m["ood_classes"].pop())),
                                           OOD_ROWS),
    "ood_classes cut down": (lambda b: edit_manifest(b, lambda m: m["ood_classes"].pop()),
                             "id_classes and ood_classes must hold each of the dataset's 12 classes once"),
    "num_id not the number of ID classes": (lambda b: edit_manifest(b, lambda m: m.update(num_id=7)),
                                            "num_id is 7 but id_classes lists 8 classes"),
    "a class both ID and OOD": (lambda b: edit_manifest(b, lambda m: m["ood_classes"][0].update(name=m["id_classes"][0]["name"])),
                                "is in both id_classes and ood_classes"),
}


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_bad_manifests_are_refused_by_every_reader(world, case, capsys):
    from fgood_bench.errors import FgoodError
    from fgood_bench.manifests.loading import load_split

    base, bench, root = world["base"], world["bench"], world["root"]
    spoil, message = BAD_MANIFESTS[case]
    spoil(bench)
    before = tree(base)
    for args in (["verify", bench, "--root", root],
                 ["export", bench, "--format", "hf", "--root", root, "--out", base / "hf"],
                 ["export", bench, "--format", "openood", "--out", base / "oo"],
                 ["evaluate", "--checkpoint", base / "ck.pt", "--manifest", bench, "--root", root, "--out", base / "ev", *TINY[:2]],
                 ["train", "--method", "standard", "--manifest", bench, "--root", root, "--out", base / "t", *TINY]):
        refused(run_cli(*args, capsys=capsys), message)
    with pytest.raises(FgoodError, match=re.escape(message)):
        for split in ("id_train", "id_test", "ood_test"):
            load_split(bench, split, root)
    assert tree(base) == before
    no_leftovers(base)


def test_an_empty_id_test_is_refused_by_evaluate(world, capsys):
    base, bench = world["base"], world["bench"]
    rewrite_split(bench, "id_test", b"path\tlabel\tclass_name\n")
    edit_manifest(bench, lambda m: m["splits"]["id_test"].update(count=0))
    before = tree(base)
    refused(run_cli("evaluate", "--checkpoint", base / "ck.pt", "--manifest", bench, "--root", world["root"],
                    "--out", base / "ev", *TINY[:2], capsys=capsys), "the id_test split is empty")
    assert tree(base) == before


def test_manifests_are_strict_json(world):
    text = (world["bench"] / "manifest.json").read_text()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} in a manifest"))
    from fgood_bench.outputs import strict_json
    from fgood_bench.errors import FgoodError

    with pytest.raises(FgoodError, match="not a finite number"):
        strict_json({"accuracy": float("nan")})


# ----------------------------------------------- predictions files and checkpoints (items 10, 11, 13)
def npy_header_only(shape: tuple, dtype: str) -> bytes:
    """A .npy whose header declares ``shape`` but carries almost no data (what a zip bomb inflates)."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_2_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + bytes(1024)


def write_npz(path: Path, **members: bytes) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(f"{name}.npy", content)


def test_bad_predictions_files_are_refused_unread(world, tmp_path, capsys):
    with np.load(world["bench"] / "predictions.npz") as saved:
        paths, logits = saved["paths"], saved["logits"]
    bad = tmp_path / "preds.npz"
    paths_npy = tmp_path / "p.npy"
    np.save(paths_npy, paths)

    def with_logits(array):
        np.savez(bad, paths=paths, logits=array)

    cases = {
        "zip bomb": (lambda: write_npz(bad, paths=paths_npy.read_bytes(), logits=npy_header_only((200_000_000, 12), "<f4")),
                     "declared (200000000, 12) of float32, more than the evaluation split needs"),
        "text file": (lambda: bad.write_text("path,logit\na.jpg,1.0\n"), "not a .npz file"),
        "folder": (lambda: bad.mkdir(), "a folder, not a predictions file"),
        "bool logits": (lambda: with_logits(logits > 0), "'logits' must be real numbers, got bool"),
        "complex logits": (lambda: with_logits(logits.astype(np.complex64)), "'logits' must be real numbers, got complex64"),
        "string logits": (lambda: with_logits(logits.astype(str)), "'logits' must be real numbers, got <U"),
        "pickled logits": (lambda: np.savez(bad, paths=paths, logits=np.array([None] * len(paths))), "Python objects (pickled data)"),
        "float32 overflow": (lambda: with_logits(logits.astype(np.float64) * 1e40), "overflow float32"),
    }
    for case, (write, message) in cases.items():
        shutil.rmtree(bad) if bad.is_dir() else bad.unlink(missing_ok=True)
        write()
        before = tree(tmp_path)
        err = refused(run_cli("build-splits", "bird", "--root", world["root"], "--out", tmp_path / "out", "--num-id", "8",
                              "--predictions", bad, capsys=capsys), message)
        assert "diverged" not in err, case
        assert tree(tmp_path) == before, case


def test_bad_checkpoints_are_one_line(world, tmp_path, capsys):
    good = torch.load(world["base"] / "ck.pt", weights_only=True)
    bad = tmp_path / "ck.pt"
    cases = {
        "folder": (lambda: bad.mkdir(), "a folder, not a checkpoint file"),
        "classes not a list": (lambda: torch.save({**good, "classes": 8}, bad), "'classes' must be a list of class names, got int"),
        "tensor as state_dict": (lambda: torch.save({**good, "state_dict": torch.zeros(3)}, bad), "'state_dict' must map parameter names to tensors"),
        "truncated": (lambda: bad.write_bytes((world["base"] / "ck.pt").read_bytes()[:5000]), "not a loadable PyTorch file"),
    }
    for case, (write, message) in cases.items():
        shutil.rmtree(bad) if bad.is_dir() else bad.unlink(missing_ok=True)
        write()
        before = tree(world["base"])
        refused(run_cli("evaluate", "--checkpoint", bad, "--manifest", world["bench"], "--root", world["root"],
                        "--out", world["base"] / "ev", *TINY[:2], capsys=capsys), message)
        assert tree(world["base"]) == before, case


def test_multi_line_library_errors_become_one_line(capsys, monkeypatch):
    import fgood_bench.cli as cli
    import fgood_bench.commands.datasets as commands_datasets
    from fgood_bench.errors import FgoodError

    def fails(args):
        raise FgoodError("ck.pt: does not fit resnet18 (Error(s) in loading state_dict:\n\tMissing key(s): fc.weight\n)")

    monkeypatch.setattr(commands_datasets, "cmd_datasets", fails)
    monkeypatch.setattr(cli, "build_parser", lambda real=cli.build_parser: _parser_running(real(), fails))
    assert refused(run_cli("datasets", capsys=capsys)) == \
        "fgood-bench: error: ck.pt: does not fit resnet18 (Error(s) in loading state_dict: Missing key(s): fc.weight )\n"


def _parser_running(parser, handler):
    parser.set_defaults(run=handler)
    return parser


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--checkpoint", "c", "--manifest", "m", "--root", "r", "--out", "o", "--base-rate", "inf"],
     "evaluate: argument --base-rate: must be a positive finite number, got inf"),
    (["build-ood-set", "places365", "--root", "r", "--out", "o", "--size", "0"], "build-ood-set: argument --size: must be a positive integer"),
    (["export", "m", "--format", "zip", "--out", "o"], "export: argument --format: invalid choice: 'zip'"),
    (["verify", "m"], "verify: the following arguments are required: --root"),
    (["no-such-command"], "argument COMMAND: invalid choice"),
])
def test_bad_command_lines_are_one_line_without_usage(argv, message, capsys):
    err = refused(run_cli(*argv, capsys=capsys), message)
    assert "usage:" not in err and capsys.readouterr().out == ""
