"""Manifests: round trip, tamper detection, unsafe manifests, HF loading and export, OOD sets, INet lists."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REFERENCE, replace_file, run_cli, write_predictions
from fgood_bench import SplitDataset, load_benchmark, load_split
from fgood_bench.datasets import synthetic
from fgood_bench.datasets.imagenet import imagenet_synsets
from fgood_bench.errors import FgoodError
from fgood_bench.manifests.files import sha256_bytes
from fgood_bench.manifests.manifest import Manifest

MANIFESTS = Path(__file__).parents[1] / "manifests"


@pytest.fixture
def built(dozen_birds, tmp_path, capsys):
    """A bird benchmark (K=8 of 12) with per-image hashes, in a folder of its own, and its dataset root."""
    write_predictions(tmp_path / "preds.npz", dozen_birds, {c: 0.4 + c / 40 for c in range(12)})
    data = tmp_path / "data"
    shutil.copytree(dozen_birds, data / "CUB_200_2011")
    status, _, err = run_cli("build-splits", "bird", "--root", data, "--out", tmp_path / "out", "--num-id", "8",
                             "--predictions", tmp_path / "preds.npz", "--hash-images", capsys=capsys)
    assert status == 0, err
    return tmp_path / "out" / "bird", data


def test_round_trip_build_load_verify(built, capsys):
    folder, data = built
    manifest = Manifest.load(folder)
    assert manifest.kind == "benchmark" and manifest.data["image_sha256"] is True
    assert manifest.split_names == ["id_train", "id_test", "ood_test"]
    rows = manifest.split("id_train")
    assert len(rows) == 48 and rows.sha256 is not None and len(rows.sha256[0]) == 64
    status, out, _ = run_cli("verify", folder / "manifest.json", "--root", data, "--images", capsys=capsys)
    assert status == 0, out
    assert out.splitlines()[-1] == "OK: 96 images in 3 splits, all decoded and matching their sha256"
    assert "not pinned" not in out  # the images' sha256 are recorded
    assert f"manifest sha256 {sha256_bytes((folder / 'manifest.json').read_bytes())}" in out


@pytest.mark.parametrize("edit", ["change", "add", "remove"])
def test_any_edit_of_a_split_file_is_detected(built, edit, capsys):
    folder, data = built
    split = folder / "splits" / "id_test.txt"
    lines = split.read_text().splitlines(keepends=True)
    if edit == "change":
        lines[1] = lines[1].replace("\t0\t", "\t1\t", 1) if "\t0\t" in lines[1] else lines[1].replace("\t", "\t0", 1)
    elif edit == "add":
        lines.append(lines[-1])
    else:
        del lines[-1]
    replace_file(split, "".join(lines))
    status, out, _ = run_cli("verify", folder, "--root", data, capsys=capsys)
    assert status == 1 and "id_test: " in out and "sha256 differs from the manifest's" in out
    with pytest.raises(FgoodError, match="the split file was changed"):
        load_split(folder, "id_test", data)


def test_dataset_problems_are_summarised(built, capsys):
    folder, data = built
    root = data / "CUB_200_2011"
    replace_file(root / "classes.txt", (root / "classes.txt").read_text() + "13 013.Extra\n")
    rows = Manifest.load(folder).split("ood_test")
    (root / rows.paths[0]).unlink()
    (root / rows.paths[1]).unlink()
    (root / rows.paths[2]).write_bytes(b"broken")
    other = root / rows.paths[3]
    other.unlink()
    synthetic.write_image(other, 99)  # a valid image, but not the published one
    status, out, _ = run_cli("verify", folder, "--root", data, "--images", capsys=capsys)
    assert status == 1
    assert "metadata classes.txt: differs from the manifest's sha256" in out
    assert f"ood_test: 2 missing, first: {rows.paths[0]}, {rows.paths[1]}" in out
    assert f"ood_test: 1 unreadable, first: {rows.paths[2]}" in out
    assert f"ood_test: 2 hash differs, first: {rows.paths[2]}, {rows.paths[3]}" in out


@pytest.fixture
def consensus(dozen_birds, tmp_path, capsys):
    """A bird benchmark (K=8 of 12) ranked by two predictions files, so with stability.json, built
    without --hash-images, and its own copy of the dataset."""
    predictions = []
    for k, shift in enumerate((0, 3)):
        predictions += ["--predictions", tmp_path / f"preds{k}.npz"]
        write_predictions(tmp_path / f"preds{k}.npz", dozen_birds, {c: 0.4 + ((c + shift) % 12) / 40 for c in range(12)})
    data = tmp_path / "consensus-data"
    shutil.copytree(dozen_birds, data / "CUB_200_2011")
    status, _, err = run_cli("build-splits", "bird", "--root", data, "--out", tmp_path / "consensus", "--num-id", "8",
                             *predictions, capsys=capsys)
    assert status == 0, err
    return tmp_path / "consensus" / "bird", data


def test_verify_checks_every_file_the_manifest_pins(consensus, capsys):
    """ranking.csv, predictions.npz and stability.json are pinned by the manifest like its split files:
    garbage in or a file gone is reported as a changed metadata file is (exit 1)."""
    from fgood_bench.manifests.verify import pinned_files

    folder, data = consensus
    pinned = ["ranking.csv", "predictions.npz", "stability.json"]
    assert sorted(name for name, _ in pinned_files(Manifest.load(folder).data)) == sorted(pinned)
    assert run_cli("verify", folder, "--root", data, capsys=capsys)[0] == 0
    for name in pinned:
        original = (folder / name).read_bytes()
        replace_file(folder / name, b"garbage")
        status, out, _ = run_cli("verify", folder, "--root", data, capsys=capsys)
        assert status == 1 and f"manifest file {name}: differs from the manifest's sha256" in out.splitlines(), out
        (folder / name).unlink()
        status, out, _ = run_cli("verify", folder, "--root", data, capsys=capsys)
        assert status == 1 and f"manifest file {name}: missing" in out.splitlines(), out
        (folder / name).write_bytes(original)
    assert run_cli("verify", folder, "--root", data, capsys=capsys)[0] == 0


def test_verify_says_when_image_contents_are_not_pinned(consensus, capsys):
    """Without --hash-images a replaced image still decodes, so verify --images passes: it must say
    that the contents were not compared."""
    folder, data = consensus
    image = data / "CUB_200_2011" / Manifest.load(folder).split("id_test").paths[0]
    image.unlink()
    synthetic.write_image(image, 99)  # a valid image, but not the one the benchmark was built with
    status, out, _ = run_cli("verify", folder, "--root", data, "--images", capsys=capsys)
    assert status == 0, out
    assert out.splitlines()[-2:] == [
        "image contents are not pinned: the manifest records no per-image sha256 (built without --hash-images), "
        "so a replaced image goes unnoticed (--images only decodes them)",
        "OK: 96 images in 3 splits, all decoded",
    ]


def test_rows_that_disagree_with_the_classes_are_one_line_naming_the_row(built, capsys):
    """Swapping the names of ID labels 0 and 1 keeps every sha256 right: the rows tell."""
    folder, data = built
    manifest = json.loads((folder / "manifest.json").read_text())
    first, second = manifest["id_classes"][:2]
    first["name"], second["name"] = second["name"], first["name"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    path, label, name = (folder / "splits" / "id_train.txt").read_text().splitlines()[1].split("\t")[:3]
    assert label == "0" and name == second["name"]  # the first row: a class-0 image, under its own name
    status, _, err = run_cli("verify", folder, "--root", data, capsys=capsys)
    assert status == 2 and err == (f"fgood-bench: error: {folder / 'splits' / 'id_train.txt'}: line 2 ({path}): label 0 and "
                                   f"class {name!r}, which disagree with the manifest's id_classes (label 0 is {first['name']!r})\n")


def test_a_weights_file_is_recorded_by_name_and_sha256(dozen_birds, tmp_path, capsys):
    """A local --weights file goes into the manifest by its name and content, not its machine's path."""
    import torch
    import torchvision

    from fgood_bench.manifests.files import sha256_file
    from fgood_bench.ranking.build import weights_record

    assert weights_record("IMAGENET1K_V1") == {"weights": "IMAGENET1K_V1"}  # torchvision names stay as typed
    assert weights_record("none") == {"weights": "none"} and weights_record(None) == {"weights": None}
    weights = tmp_path / "home-of-someone" / "r18.pth"
    weights.parent.mkdir()
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    status, _, err = run_cli("build-splits", "bird", "--root", dozen_birds, "--out", tmp_path / "out", "--num-id", "8",
                             "--epochs", "1", "--arch", "resnet18", "--weights", weights, "--image-size", "32",
                             "--batch-size", "8", "--workers", "0", capsys=capsys)
    assert status == 0, err
    text = (tmp_path / "out" / "bird" / "manifest.json").read_text()
    source = json.loads(text)["predictions"]["source"]
    assert source["weights"] == "r18.pth" and source["weights_sha256"] == sha256_file(weights)
    assert "home-of-someone" not in text


def _write_manifest(folder: Path, lines: list[str], **changes) -> Path:
    content = ("path\tlabel\tclass_name\n" + "".join(f"{line}\t-1\tx\n" for line in lines)).encode()
    manifest = {
        "schema_version": 1, "kind": "ood_set", "benchmark": "evil",
        "dataset": {"id": "imagefolder", "options": {}, "num_classes": 1, "metadata_sha256": {}},
        "splits": {"ood_test": {"file": "splits/ood_test.txt", "count": len(lines), "sha256": sha256_bytes(content)}},
        "provenance": {"toolkit": "someone"}, **changes,
    }
    (folder / "splits").mkdir(parents=True, exist_ok=True)
    (folder / "splits" / "ood_test.txt").write_bytes(content)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder / "manifest.json"


@pytest.mark.parametrize("path", ["../secret.jpg", "/etc/passwd", "a/../../b.jpg", "C:/x.jpg", "a\\..\\b.jpg", "./a.jpg"])
def test_paths_leaving_the_root_are_refused(tmp_path, path, capsys):
    synthetic.write_image(tmp_path / "data" / "a.jpg", 0)
    manifest = _write_manifest(tmp_path / "m", ["a.jpg", path])
    with pytest.raises(FgoodError, match=r"unsafe image path"):
        load_split(manifest, "ood_test", tmp_path / "data")
    status, _, err = run_cli("verify", manifest, "--root", tmp_path / "data", capsys=capsys)
    assert status == 2 and "unsafe image path" in err and err.count("\n") == 1  # refused as docs/manifest.md says


def test_unknown_version_and_schema_violations_are_refused(tmp_path, capsys):
    synthetic.write_image(tmp_path / "data" / "a.jpg", 0)
    cases = {
        "v2": ({"schema_version": 2}, "unknown schema_version 2"),
        "file": ({"splits": {"ood_test": {"file": "../../outside.txt", "count": 1, "sha256": "0" * 64}}},
                 "does not fit the manifest schema at splits/ood_test/file"),
        "kind": ({"kind": "benchmark"}, "does not fit the manifest schema"),
    }
    for name, (changes, message) in cases.items():
        manifest = _write_manifest(tmp_path / name, ["a.jpg"], **changes)
        status, _, err = run_cli("verify", manifest, "--root", tmp_path / "data", capsys=capsys)
        assert status == 2 and message in err and err.count("\n") == 1, name


def test_load_split_and_benchmark_as_hugging_face_datasets(built):
    folder, data = built
    manifest = Manifest.load(folder)
    dataset = load_split(folder, "id_test", data)
    label_names = [c["name"] for c in manifest.data["id_classes"]]
    assert dataset.features["label"].names == label_names
    assert dataset.column_names == ["image", "label", "class_name", "path", "sha256"]
    first = dataset[0]
    assert first["path"] == manifest.split("id_test").paths[0]
    assert np.array_equal(np.asarray(first["image"]), np.asarray(Image.open(data / "CUB_200_2011" / first["path"])))
    assert label_names[first["label"]] == first["class_name"]
    benchmark = load_benchmark(folder, data)
    assert list(benchmark) == ["id_train", "id_test", "ood_test"]
    assert set(benchmark["ood_test"]["label"]) == {-1}
    view = SplitDataset(folder, "id_train", data, transform=lambda image: np.asarray(image).shape)
    assert len(view) == 48 and view[0] == ((8, 8, 3), manifest.split("id_train").labels[0])


def test_parquet_export_loads_back_offline(built, tmp_path, capsys, monkeypatch):
    import datasets

    folder, data = built
    status, out, err = run_cli("export", folder, "--format", "hf", "--root", data, "--out", tmp_path / "hf", capsys=capsys)
    assert status == 0, err
    exported = Path(out.strip())
    card = (exported / "README.md").read_text()
    assert card.startswith("---\n") and "configs:" in card and "class_label" in card and "arXiv:2106.03917" in card
    shutil.rmtree(data)  # the export must not need the original files
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    loaded = datasets.load_dataset(str(exported), cache_dir=str(tmp_path / "hf-cache"))  # never an earlier run's cache
    rows = Manifest.load(folder).split("ood_test")
    ood = loaded["ood_test"]
    assert ood["path"][:] == rows.paths and list(ood["label"]) == rows.labels
    assert ood.features["label"].names == Manifest.load(folder).id_class_names
    pixels = np.asarray(ood[0]["image"])
    assert pixels.shape == (8, 8, 3)
    assert sha256_bytes(ood.cast_column("image", datasets.Image(decode=False))[0]["image"]["bytes"]) == rows.sha256[0]


def test_openood_export_matches_split_files(built, tmp_path, capsys):
    folder, _ = built
    status, out, _ = run_cli("export", folder, "--format", "openood", "--out", tmp_path / "oo", "--prefix", "cub/", capsys=capsys)
    assert status == 0
    lists = Path(out.strip()) / "data" / "benchmark_imglist" / "bird"
    assert sorted(p.name for p in lists.iterdir()) == ["test_bird.txt", "test_holdout.txt", "train_bird.txt", "val_bird.txt"]
    rows = Manifest.load(folder).split("ood_test")
    assert (lists / "test_holdout.txt").read_text().splitlines() == [f"cub/{p} -1" for p in rows.paths]
    spaced = _write_manifest(tmp_path / "spaced", ["220-n000032-Fila Braziliero/n1.jpg"])
    status, _, err = run_cli("export", spaced, "--format", "openood", "--out", tmp_path / "oo2", capsys=capsys)
    assert status == 2 and "has a space, which OpenOOD's list reader splits on" in err and "--link-images" in err


def test_build_ood_set_is_a_seeded_sample(tmp_path, capsys):
    categories = [line.split()[0] for line in (REFERENCE / "places365" / "categories_places365.txt").read_text().splitlines()]
    root = synthetic.write_places365(tmp_path / "data", categories, [(f"Places365_val_{i:08d}.jpg", i % 365) for i in range(1, 401)])
    paths = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        status, out, err = run_cli("build-ood-set", "places365", "--root", root, "--out", tmp_path / name, "--size", "50",
                                   "--seed", str(seed), capsys=capsys)
        assert status == 0, err
        paths[name] = Manifest.load(out.strip()).split("ood_test").paths
    assert paths["a"] == paths["b"] and paths["a"] != paths["c"] and len(set(paths["a"])) == 50
    assert (tmp_path / "a" / "places365" / "manifest.json").read_bytes() == (tmp_path / "b" / "places365" / "manifest.json").read_bytes()
    status, _, err = run_cli("build-ood-set", "places365", "--root", root, "--out", tmp_path / "d", "--size", "401", capsys=capsys)
    assert status == 2 and "size (--size) 401: must be 1..400" in err
    dtd = synthetic.write_sample("dtd", tmp_path / "dtd")
    status, out, _ = run_cli("build-ood-set", "dtd", "--root", dtd, "--out", tmp_path / "t", "--name", "textures", capsys=capsys)
    textures = Manifest.load(out.strip())
    assert textures.name == "textures" and len(textures.split("ood_test")) == 18  # train + val + test of partition 1


def test_inet_lists_match_the_paper_figure_12():
    synsets = imagenet_synsets()
    wnids = list(synsets)
    tables = {}
    for name in ("inet_a", "inet_b"):
        lines = (MANIFESTS / "inet" / f"{name}.tsv").read_text().splitlines()
        assert lines[0] == "class_id\twnid\tname"
        tables[name] = [line.split("\t") for line in lines[1:]]
        assert len(tables[name]) == 50 and len({row[1] for row in tables[name]}) == 50
        for class_id, wnid, printed in tables[name]:
            assert wnids[int(class_id)] == wnid  # the paper's ids are sorted-wnid indices
            assert printed.lower() in [n.lower() for n in synsets[wnid].split(", ")] or printed in synsets[wnid]
    assert not {r[1] for r in tables["inet_a"]} & {r[1] for r in tables["inet_b"]}
    assert tables["inet_a"][0] == ["933", "n07697313", "cheeseburger"]
    assert tables["inet_b"][-1] == ["959", "n07831146", "carbonara"]
