"""Every path a command writes to follows the output rules (docs/outputs.md), and every command that
reads a benchmark and its OOD sets checks them alike (issue 24, items 2, 5, 6, 7):

* ``--name`` is one plain folder name (``outputs.output_name``): ``..``, ``a/b`` or an absolute name
  never writes outside ``--out`` (into the dataset being read, or over an OOD set elsewhere);
* ``build-splits --work-dir`` never inside the dataset it reads, nor inside ``OUT/NAME``;
* ``export`` validates the benchmark and its ``--far-ood`` sets as ``evaluate`` does, and
  ``evaluate --ood`` names follow export's rule;
* ``publish --resume`` re-hashes a finished stage's files and redoes a stage whose files changed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, write_predictions
from fgood_bench.datasets import synthetic
from fgood_bench.manifests.files import sha256_bytes, sha256_file
from fgood_bench.manifests.manifest import Manifest

TINY = ["--arch", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size", "8", "--workers", "0",
        "--epochs", "1", "--device", "cpu"]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) and its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(status: int, err: str, *words: str) -> None:
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("fgood-bench: error: "), err
    for word in words:
        assert word in err, err


def nothing_but(folder: Path, *names: str) -> None:
    """``folder`` holds only ``names`` (what the test put there): nothing was written beside them."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


BAD_NAMES = {"parent": "../escaped", "grandparent": "../../escaped", "absolute": None, "nested": "a/b", "hidden": ".x",
             "empty": ""}


def bad_name(kind: str, tmp_path: Path) -> str:
    return str(tmp_path / "escaped") if kind == "absolute" else BAD_NAMES[kind]


# -- item 2: --name is one folder name, --work-dir follows the rules of --out ----------------------


@pytest.mark.parametrize("kind", ["parent", "grandparent", "absolute", "empty"])
def test_build_splits_name_is_one_folder_name(kind, dozen_birds, tmp_path, capsys):
    base = tmp_path / "a"
    base.mkdir()
    write_predictions(tmp_path / "preds.npz", dozen_birds, {c: 0.4 + c / 40 for c in range(12)})
    status, _, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", base / "out", "--num-id", "8",
                             "--predictions", tmp_path / "preds.npz", "--name", bad_name(kind, tmp_path), capsys=capsys)
    refused(status, err, "--name", "one plain folder name")
    nothing_but(tmp_path, "a", "preds.npz")
    nothing_but(base)


@pytest.mark.parametrize("kind", ["parent", "absolute", "nested", "hidden"])
def test_build_ood_set_name_is_one_folder_name(kind, tmp_path, capsys):
    places = synthetic.write_sample("places365", tmp_path / "places")
    before = tree(places)
    status, _, err = run_cli("build-ood-set", "places365", "--root", places, "--out", tmp_path / "out",
                             "--name", bad_name(kind, tmp_path), capsys=capsys)
    refused(status, err, "--name")
    nothing_but(tmp_path, "places")
    assert tree(places) == before


def test_build_ood_set_name_never_reaches_into_the_dataset_or_over_another_set(tmp_path, capsys):
    places = synthetic.write_sample("places365", tmp_path / "places")
    before = tree(places)
    status, _, err = run_cli("build-ood-set", "places365", "--root", places, "--out", tmp_path / "out",
                             "--name", "../places/stolen", capsys=capsys)
    refused(status, err, "--name '../places/stolen'")
    assert tree(places) == before
    # an OOD set elsewhere is not replaced through a name, even with --overwrite
    status, _, err = run_cli("build-ood-set", "places365", "--root", places, "--out", tmp_path / "other", "--size", "3",
                             capsys=capsys)
    assert status == 0, err
    other = tree(tmp_path / "other")
    status, _, err = run_cli("build-ood-set", "places365", "--root", places, "--out", tmp_path / "out", "--size", "5",
                             "--name", "../other/places365", "--overwrite", capsys=capsys)
    refused(status, err, "--name")
    assert tree(tmp_path / "other") == other and not (tmp_path / "out").exists()


def test_synthetic_val_name_is_one_folder_name(bird_benchmark, dozen_birds, tmp_path, capsys):
    status, _, err = run_cli("build-ood-set", "synthetic-val", "--manifest", bird_benchmark["base"] / "out" / "bird",
                             "--root", dozen_birds, "--out", tmp_path / "out", "--size", "1", "--image-size", "16",
                             "--name", "../escaped", capsys=capsys)
    refused(status, err, "--name '../escaped'")
    nothing_but(tmp_path)


@pytest.mark.parametrize("kind", ["parent", "absolute"])
def test_filter_outliers_name_is_one_folder_name(kind, tmp_path, capsys):
    minc = synthetic.write_sample("minc2500", tmp_path / "minc")
    status, _, err = run_cli("filter-outliers", "none", "--source", "minc2500", "--root", minc, "--out", tmp_path / "out",
                             "--name", bad_name(kind, tmp_path), capsys=capsys)
    refused(status, err, "--name")
    nothing_but(tmp_path, "minc")


@pytest.mark.parametrize("where", ["dataset", "benchmark"])
def test_build_splits_work_dir_follows_the_rules_of_out(where, tmp_path, capsys):
    """Training checkpoints never go into the dataset being read (nor into OUT/NAME, replaced whole at
    the end); refused before any training."""
    cub = synthetic.write_sample("cub", tmp_path / "data")
    before = tree(tmp_path / "data")
    work = Path(cub) / "work" if where == "dataset" else tmp_path / "out" / "bird"
    status, _, err = run_cli("build-splits", "bird", "--root", cub, "--out", tmp_path / "out", "--num-id", "2",
                             "--work-dir", work, *TINY, capsys=capsys)
    refused(status, err, f"--work-dir {work}")
    assert tree(tmp_path / "data") == before
    nothing_but(tmp_path, "data")


# -- item 5: export validates the benchmark and its far-OOD sets as evaluate does ------------------


def leak_ood_image_into_id_train(source: Path, copy: Path) -> str:
    """A copy of the benchmark whose id_train also lists one of its ood_test images (a hand edit)."""
    shutil.copytree(source, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    ood = Manifest.load(source).split("ood_test").paths[0]
    first = manifest["id_classes"][0]
    split = copy / manifest["splits"]["id_train"]["file"]
    content = split.read_bytes() + f"{ood}\t{first['label']}\t{first['name']}\n".encode()
    split.unlink()
    split.write_bytes(content)
    manifest["splits"]["id_train"].update(count=manifest["splits"]["id_train"]["count"] + 1, sha256=sha256_bytes(content))
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return ood


@pytest.mark.parametrize("form", ["openood", "hf"])
def test_export_refuses_a_benchmark_that_evaluate_refuses(form, bird_benchmark, dozen_birds, tmp_path, capsys):
    leaked = leak_ood_image_into_id_train(bird_benchmark["base"] / "out" / "bird", tmp_path / "leaky" / "bird")
    status, _, err = run_cli("export", tmp_path / "leaky" / "bird", "--format", form, "--out", tmp_path / "exports",
                             "--root", dozen_birds, capsys=capsys)
    refused(status, err, "manifest.json", leaked, "the splits must be disjoint")
    assert not (tmp_path / "exports").exists()


def test_export_refuses_the_benchmark_itself_as_far_ood(bird_benchmark, tmp_path, capsys):
    out = bird_benchmark["base"] / "out"
    status, _, err = run_cli("export", out / "bird", "--format", "openood", "--out", tmp_path / "x", "--far-ood",
                             f"self={out / 'bird'}", capsys=capsys)
    refused(status, err, "--far-ood self=", "the benchmark's own manifest")
    shutil.copytree(out / "bird", tmp_path / "copy")  # the same manifest elsewhere: the same sha256
    status, _, err = run_cli("export", out / "bird", "--format", "openood", "--out", tmp_path / "x", "--far-ood",
                             f"copy={tmp_path / 'copy'}", capsys=capsys)
    refused(status, err, "--far-ood copy=", "the benchmark's own manifest")
    nothing_but(tmp_path, "copy")


def test_export_refuses_two_far_ood_sets_of_one_name(bird_benchmark, dozen_birds, tmp_path, capsys):
    out = bird_benchmark["base"] / "out"
    status, _, err = run_cli("build-ood-set", "places365", "--root", bird_benchmark["places"], "--out", tmp_path / "sets",
                             "--size", "3", "--name", "few", capsys=capsys)
    assert status == 0, err
    status, _, err = run_cli("export", out / "bird", "--format", "openood", "--out", tmp_path / "x",
                             "--far-ood", f"places={out / 'places365'}", "--far-ood", f"places={tmp_path / 'sets' / 'few'}",
                             capsys=capsys)
    refused(status, err, "--far-ood 'places'", "given twice")
    assert not (tmp_path / "x").exists()
    # a far-OOD name that is not one plain name: the rule of --ood and --name
    status, _, err = run_cli("export", out / "bird", "--format", "openood", "--out", tmp_path / "x",
                             "--far-ood", f"a|b={out / 'places365'}", capsys=capsys)
    refused(status, err, "--far-ood 'a|b'")
    assert not (tmp_path / "x").exists()


# -- item 7: evaluate --ood names as export checks them ----------------------------------------------


@pytest.fixture
def checkpoint(bird_benchmark, tmp_path) -> Path:
    import torch

    from fgood_bench.tools.models import build_model, save_classifier

    torch.manual_seed(0)
    names = Manifest.load(bird_benchmark["base"] / "out" / "bird").id_class_names
    save_classifier(tmp_path / "ck.pt", build_model("resnet18", 8), "resnet18", names, {"image_size": 32})
    return tmp_path / "ck.pt"


@pytest.mark.parametrize("spec, words", [
    ("a|b={places}", ["--ood 'a|b'", "one plain folder name"]),
    ("bird={bird}", ["--ood bird=", "the benchmark's own manifest"]),
])
def test_evaluate_ood_names_and_sets_are_checked(spec, words, checkpoint, bird_benchmark, dozen_birds, tmp_path, capsys):
    out = bird_benchmark["base"] / "out"
    spec = spec.format(places=out / "places365", bird=out / "bird")
    name = spec.partition("=")[0]
    roots = ["--ood-root", f"{name}={bird_benchmark['places']}"] if "places" in spec else []
    status, _, err = run_cli("evaluate", "--checkpoint", checkpoint, "--manifest", out / "bird", "--root", dozen_birds,
                             "--ood", "holdout", "--ood", spec, *roots,
                             "--scorers", "msp", "--workers", "0", "--device", "cpu", "--out", tmp_path / "run", capsys=capsys)
    refused(status, err, *words)
    nothing_but(tmp_path, "ck.pt")


# -- item 6: publish --resume verifies what finished stages wrote ------------------------------------


@pytest.fixture(scope="module")
def finished_release(dozen_birds, tmp_path_factory) -> dict:
    """A finished release of bird (from a predictions file) with its audit, verify and OpenOOD export."""
    base = tmp_path_factory.mktemp("release")
    write_predictions(base / "bird.npz", dozen_birds, {c: 0.4 + c / 40 for c in range(12)})
    config = base / "release.yaml"
    config.write_text(yaml.safe_dump({
        "roots": {"cub": str(dozen_birds)}, "benchmarks": {"bird": {"predictions": "bird.npz", "num_id": 8}},
        "ood_sets": [], "outliers": [], "exports": ["openood"]}))
    from fgood_bench.cli import main

    assert main(["publish", "--config", str(config), "--out", str(base / "reference")]) == 0
    return {"config": config, "reference": base / "reference"}


def resume_after(finished_release, tmp_path, capsys, damage) -> tuple[Path, dict, str]:
    out = tmp_path / "release"
    shutil.copytree(finished_release["reference"], out, symlinks=True)
    damage(out)
    status, _, err = run_cli("publish", "--config", finished_release["config"], "--out", out, "--resume", capsys=capsys)
    assert status == 0, err
    release = json.loads((out / "release.json").read_text())
    # every stage is listed with the files it wrote, and each of those hashes is the file's
    assert [s["stage"] for s in release["stages"]] == ["splits:bird", "audit:bird", "verify", "export:openood:bird"]
    for stage in release["stages"]:
        assert all(sha256_file(out / path) == digest for path, digest in stage["outputs"].items()), stage["stage"]
    listed = {path: digest for stage in release["stages"] for path, digest in stage["outputs"].items()}
    assert listed and all(release["files"][path] == digest for path, digest in listed.items())
    assert release["files"] == {path: sha256_file(out / path) for path in release["files"]}
    return out, release, err


def reference_files(finished_release) -> dict[str, bytes]:
    return {path: content for path, content in tree(finished_release["reference"]).items()
            if not path.startswith(".publish-state") and path not in ("RELEASE.md", "release.json")}


def same_release(finished_release, out: Path) -> None:
    resumed = {path: content for path, content in tree(out).items()
               if not path.startswith(".publish-state") and path not in ("RELEASE.md", "release.json")}
    assert resumed == reference_files(finished_release)


def test_publish_resume_redoes_a_deleted_export(finished_release, tmp_path, capsys):
    out, release, err = resume_after(finished_release, tmp_path, capsys,
                                     lambda out: shutil.rmtree(out / "exports" / "openood" / "bird"))
    assert "export:openood:bird: done earlier, but its output exports/openood/bird/" in err and "redoing it" in err
    assert "splits:bird: done earlier, skipped" in err
    assert any(path.startswith("exports/openood/bird/") for path in release["files"])
    same_release(finished_release, out)


def test_publish_resume_redoes_a_benchmark_whose_split_file_changed(finished_release, tmp_path, capsys):
    original = (finished_release["reference"] / "bird" / "splits" / "id_test.txt").read_bytes()

    def corrupt(out):
        (out / "bird" / "splits" / "id_test.txt").write_bytes(b"garbage\n")

    out, release, err = resume_after(finished_release, tmp_path, capsys, corrupt)
    assert "splits:bird: done earlier, but its output bird/splits/id_test.txt was changed since it finished" in err
    assert (out / "bird" / "splits" / "id_test.txt").read_bytes() == original
    assert release["files"]["bird/splits/id_test.txt"] == sha256_bytes(original)
    same_release(finished_release, out)


def test_publish_resume_after_a_deleted_manifest(finished_release, tmp_path, capsys):
    out, release, err = resume_after(finished_release, tmp_path, capsys, lambda out: (out / "bird" / "manifest.json").unlink())
    assert "splits:bird: done earlier, but its output bird/manifest.json was deleted since it finished" in err
    assert "Traceback" not in err
    assert release["benchmarks"]["bird"]["manifest_sha256"] == sha256_file(out / "bird" / "manifest.json")
    same_release(finished_release, out)
