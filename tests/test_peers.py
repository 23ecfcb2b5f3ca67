"""The peers' own rules on exported benchmarks: OpenOOD's list reader and config layout, a warning-free
Hugging Face load, a torch DataLoader over a split, and scoring any model or score function from Python."""

import json
import logging
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from PIL import Image

import fgood_bench
from conftest import run_cli
from fgood_bench.datasets import load_dataset, synthetic
from fgood_bench.errors import FgoodError
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.tools.models import build_model, load_classifier, save_classifier


def openood_rows(list_file: Path) -> list[tuple[str, int]]:
    """Every line as OpenOOD's ImglistDataset.getitem reads it (openood/datasets/imglist_dataset.py)."""
    rows = []
    for line in list_file.read_text().splitlines(keepends=True):
        tokens = line.strip("\n").split(" ", 1)
        rows.append((tokens[0], int(tokens[1])))
    return rows


def open_every_image(export: Path, data_dir: str, list_file: Path) -> list[tuple[str, int]]:
    """Parse a list and open each image at os.path.join(data_dir, path), from the export as working folder."""
    rows = openood_rows(list_file)
    for image_name, _ in rows:
        assert not image_name.startswith("/")
        with Image.open(export / os.path.join(data_dir, image_name)) as image:
            image.convert("RGB")
    return rows


@pytest.fixture(scope="module")
def dog(tmp_path_factory):
    """A dog benchmark (K=2) of the generated Tsinghua Dogs sample, whose folder 'Fila Braziliero' has a space."""
    base = tmp_path_factory.mktemp("dog")
    dogs = synthetic.write_sample("thudogs", base / "dogs")
    index = load_dataset("thudogs", dogs)
    table = index.split("val")
    logits = np.eye(index.num_classes)[table.column("label").to_numpy()] * 5
    np.savez(base / "dogs.npz", paths=np.array(table.column("path").to_pylist()), logits=logits)
    assert fgood_bench.cli.main(["build-splits", "dog", "--root", str(dogs), "--out", str(base / "out"), "--num-id", "2",
                                 "--predictions", str(base / "dogs.npz")]) == 0
    return base / "out" / "dog", dogs


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_openood_export_of_dog_parses_and_opens_with_a_link_tree(dog, link, tmp_path, capsys):
    folder, dogs = dog
    manifest = Manifest.load(folder)
    assert any(" " in p for s in manifest.split_names for p in manifest.split(s).paths)
    status, _, err = run_cli("export", folder, "--format", "openood", "--out", tmp_path / "plain", capsys=capsys)
    assert status == 2 and "has a space" in err and "--link-images" in err and not (tmp_path / "plain" / "dog").exists()
    status, out, err = run_cli("export", folder, "--format", "openood", "--out", tmp_path, "--root", dogs,
                               "--link-images", link, capsys=capsys)
    assert status == 0, err
    export = Path(out.strip())
    config = yaml.safe_load((export / "configs/datasets/dog/dog.yml").read_text())["dataset"]
    ood = yaml.safe_load((export / "configs/datasets/dog/dog_ood.yml").read_text())["ood_dataset"]
    lists = {split: (config[split]["data_dir"], config[split]["imglist_pth"]) for split in config["split_names"]}
    lists["holdout"] = (ood["nearood"]["holdout"]["data_dir"], ood["nearood"]["holdout"]["imglist_pth"])
    assert set(lists) == {"train", "val", "test", "holdout"}
    train = manifest.split("id_train")  # val: the ID validation images evaluate carves from it; train: the rest
    rows_of = {name: open_every_image(export, data_dir, export / list_path) for name, (data_dir, list_path) in lists.items()}
    assert sorted(rows_of["val"] + rows_of["train"]) == sorted((p.replace(" ", "_"), y) for p, y in zip(train.paths, train.labels))
    by_listed_name = {p.replace(" ", "_"): p for split in manifest.split_names for p in manifest.split(split).paths}
    for name, (data_dir, list_path) in lists.items():
        rows = rows_of[name]
        if name in ("test", "holdout"):
            split = manifest.split({"test": "id_test", "holdout": "ood_test"}[name])
            assert rows == [(p.replace(" ", "_"), y) for p, y in zip(split.paths, split.labels)]
        for listed, _ in rows:  # the link is the dataset's own file
            original = by_listed_name[listed]
            assert os.path.samefile(export / data_dir / listed, dogs / original)
            assert (export / data_dir / listed).is_symlink() == (link == "symlink")


def test_openood_layout_and_config_for_benchmark_and_far_ood(bird_benchmark, dozen_birds, tmp_path, capsys):
    out, places = bird_benchmark["base"] / "out", bird_benchmark["places"]
    status, stdout, err = run_cli("export", out / "bird", "--format", "openood", "--out", tmp_path, "--far-ood",
                                  f"places={out / 'places365'}", "--root", dozen_birds, "--ood-root", f"places={places}",
                                  "--link-images", "symlink", capsys=capsys)
    assert status == 0, err
    export = Path(stdout.strip())
    lists = sorted(str(p.relative_to(export)) for p in (export / "data/benchmark_imglist").rglob("*.txt"))
    assert lists == [f"data/benchmark_imglist/bird/{n}.txt"
                     for n in ("test_bird", "test_holdout", "test_places", "train_bird", "val_bird", "val_synthetic-val")]
    assert sorted(p.name for p in (export / "configs/datasets/bird").iterdir()) == ["bird.yml", "bird_ood.yml"]
    bird = Manifest.load(out / "bird")
    config = yaml.safe_load((export / "configs/datasets/bird/bird.yml").read_text())["dataset"]
    assert (config["name"], config["num_classes"], config["split_names"]) == ("bird", 8, ["train", "val", "test"])
    assert (config["pre_size"], config["image_size"]) == ([512, 512], 448)  # Resize((512, 512)), as D.1 and evaluate
    ood = yaml.safe_load((export / "configs/datasets/bird/bird_ood.yml").read_text())["ood_dataset"]
    assert ood["split_names"] == ["val", "nearood", "farood"] and ood["num_classes"] == 8
    # OpenOOD's get_ood_dataloader reads split_config[name] for every name in split_config.datasets
    assert ood["nearood"]["datasets"] == ["holdout"] and ood["farood"]["datasets"] == ["places"]
    counts = {}
    for split in ("nearood", "farood"):
        for name in ood[split]["datasets"]:
            entry = ood[split][name]
            assert entry["imglist_pth"].startswith("./data/benchmark_imglist/bird/")
            rows = open_every_image(export, entry["data_dir"], export / entry["imglist_pth"])
            assert {label for _, label in rows} == {-1}
            counts[name] = len(rows)
    assert counts == {"holdout": len(bird.split("ood_test")), "places": len(Manifest.load(out / "places365").split("ood_test"))}
    rows = open_every_image(export, config["test"]["data_dir"], export / config["test"]["imglist_pth"])
    assert [label for _, label in rows] == bird.split("id_test").labels
    train, val = (open_every_image(export, config[s]["data_dir"], export / config[s]["imglist_pth"]) for s in ("train", "val"))
    assert sorted(train + val) == sorted(zip(bird.split("id_train").paths, bird.split("id_train").labels))  # val carved from it
    # the same inputs give the same lists and configs
    run_cli("export", out / "bird", "--format", "openood", "--out", tmp_path / "again", "--far-ood", f"places={out / 'places365'}",
            "--root", dozen_birds, "--ood-root", f"places={places}", "--link-images", "symlink", capsys=capsys)
    for path in [*lists, "configs/datasets/bird/bird.yml", "configs/datasets/bird/bird_ood.yml"]:
        assert (tmp_path / "again" / "bird" / path).read_bytes() == (export / path).read_bytes()


def test_openood_export_of_an_ood_set_is_a_test_list_of_its_name(bird_benchmark, tmp_path, capsys):
    out = bird_benchmark["base"] / "out"
    status, stdout, err = run_cli("export", out / "places365", "--format", "openood", "--out", tmp_path, capsys=capsys)
    assert status == 0 and "no --far-ood" not in err  # an OOD set's list alone: nothing for OpenOOD's evaluator to miss
    export = Path(stdout.strip())
    # a benchmark exported without a far-OOD set: OpenOOD's test pipeline would fail later, so say so now
    status, _, err = run_cli("export", out / "bird", "--format", "openood", "--out", tmp_path / "near-only", capsys=capsys)
    assert status == 0 and "warning: no --far-ood set" in err and "warning: no OOD validation list" in err
    assert err.count("\n") == 2  # one line each
    files = sorted(str(p.relative_to(export)) for p in export.rglob("*") if p.is_file() and p.name != ".fgood-bench.json")
    assert files == ["data/benchmark_imglist/places365/test_places365.txt"]
    rows = Manifest.load(out / "places365").split("ood_test")
    assert openood_rows(export / files[0]) == [(p, -1) for p in rows.paths]
    status, _, err = run_cli("export", out / "bird", "--format", "openood", "--out", tmp_path, "--far-ood",
                             f"holdout={out / 'places365'}", capsys=capsys)
    assert status == 2 and "'holdout': the name is already used" in err
    status, _, err = run_cli("export", out / "places365", "--format", "openood", "--out", tmp_path, "--far-ood",
                             f"x={out / 'places365'}", capsys=capsys)
    assert status == 2 and "--far-ood goes with a benchmark manifest" in err


def test_hf_export_loads_without_warnings_and_is_hub_ready(bird_benchmark, dozen_birds, tmp_path, capsys, monkeypatch):
    import datasets
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    folder = bird_benchmark["base"] / "out" / "bird"
    status, out, err = run_cli("export", folder, "--format", "hf", "--root", dozen_birds, "--out", tmp_path, capsys=capsys)
    assert status == 0, err
    exported = Path(out.strip())
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("datasets")
    logger.addHandler(handler)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    try:
        loaded = datasets.load_dataset(str(exported), cache_dir=str(tmp_path / "cache"))
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == []
    card = DatasetCard.load(exported / "README.md")
    assert card.data.license == "unknown" and "license_link" not in card.data.to_dict()  # CUB states no terms
    assert "Project page: https://www.vision.caltech.edu/datasets/cub_200_2011/" in card.text
    assert "Wah, S. Branson" in card.text and "arXiv:2106.03917" in card.text
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    assert configs["default"]["data_files"] == [{"split": s, "path": f"data/{s}-*"} for s in ("id_train", "id_test", "ood_test")]
    info = DatasetInfosDict.from_dataset_card_data(card.data)["default"]
    manifest = Manifest.load(folder)
    assert info.features == loaded["id_test"].features
    assert info.features["label"].names == manifest.id_class_names
    for split in manifest.split_names:
        assert info.splits[split].num_examples == len(loaded[split]) == manifest.data["splits"][split]["count"]
        assert info.splits[split].num_bytes == loaded[split].data.nbytes  # what push_to_hub records
    builder = datasets.load_dataset_builder(str(exported), cache_dir=str(tmp_path / "fresh"))  # not prepared yet
    read = {name: (s.num_bytes, s.num_examples) for name, s in builder.info.splits.items()}
    assert read == {name: (s.num_bytes, s.num_examples) for name, s in info.splits.items()}  # read from the card, not ignored
    assert info.download_size == sum(p.stat().st_size for p in (exported / "data").iterdir())


def test_torch_split_matches_the_hf_split_through_a_dataloader(bird_benchmark, dozen_birds):
    from torchvision.transforms import v2

    folder = bird_benchmark["base"] / "out" / "bird"
    hf = fgood_bench.load_split(folder, "ood_test", root=dozen_birds)
    view = fgood_bench.load_split(folder, "ood_test", root=dozen_birds, format="torch",
                                  transform=v2.Compose([v2.ToImage(), v2.ToDtype(torch.uint8)]))
    assert isinstance(view, torch.utils.data.Dataset) and len(view) == len(hf)
    assert view.targets == list(hf["label"])  # torchvision datasets' attribute, as samplers and tools read it
    images, labels = [], []
    for batch, label in torch.utils.data.DataLoader(view, batch_size=5, num_workers=0):
        images.append(batch)
        labels.append(label)
    images, labels = torch.cat(images), torch.cat(labels)
    assert labels.tolist() == list(hf["label"]) == [-1] * len(hf)
    expected = torch.stack([torch.from_numpy(np.asarray(row["image"].convert("RGB"))).permute(2, 0, 1) for row in hf])
    assert torch.equal(images, expected)
    train = fgood_bench.load_split(folder, "id_train", root=dozen_birds, format="torch", transform=v2.PILToTensor())
    assert [train[i][1] for i in range(len(train))] == list(fgood_bench.load_split(folder, "id_train", root=dozen_birds)["label"])
    with pytest.raises(FgoodError, match="format 'numpy'"):
        fgood_bench.load_split(folder, "id_train", root=dozen_birds, format="numpy")


@pytest.fixture(scope="module")
def scored(bird_benchmark, dozen_birds, tmp_path_factory):
    """A tiny ResNet-18 checkpoint of the bird benchmark's 8 ID classes, and the CLI's evaluation of it."""
    base, places = bird_benchmark["base"], bird_benchmark["places"]
    runs = tmp_path_factory.mktemp("peers-eval")
    torch.manual_seed(1)
    names = Manifest.load(base / "out" / "bird").id_class_names
    save_classifier(runs / "ck.pt", build_model("resnet18", 8), "resnet18", names)
    common = {"ood": ["holdout", f"places={base / 'out' / 'places365'}"], "ood_roots": {"places": places}}
    assert fgood_bench.cli.main([
        "evaluate", "--checkpoint", str(runs / "ck.pt"), "--manifest", str(base / "out" / "bird"), "--root", str(dozen_birds),
        "--ood", common["ood"][0], "--ood", common["ood"][1], "--ood-root", f"places={places}", "--out", str(runs / "cli"),
        "--image-size", "32", "--workers", "0", "--scorers", "msp,energy,maxlogit,mahalanobis"]) == 0
    model, _ = load_classifier(runs / "ck.pt", 8)
    return {"runs": runs, "model": model, "benchmark": base / "out" / "bird", "root": dozen_birds, **common,
            "cli": json.loads((runs / "cli" / "results.json").read_text())}


@pytest.mark.slow
def test_evaluate_model_gives_the_cli_numbers(scored, tmp_path):
    results = fgood_bench.evaluate_model(scored["model"], scored["benchmark"], root=scored["root"],
                                         scorers=["msp", "energy", "maxlogit", "mahalanobis"], ood=scored["ood"],
                                         ood_roots=scored["ood_roots"], image_size=32, workers=0, out=tmp_path / "api")
    cli = scored["cli"]
    assert results["metrics"] == cli["metrics"] and results["id_accuracy"] == cli["id_accuracy"]
    # a model loaded from a fgood-bench checkpoint carries its record: the API names the same checkpoint
    assert results["counts"] == cli["counts"] and results["checkpoint_sha256"] == cli["checkpoint_sha256"]
    assert (tmp_path / "api" / "results.md").read_text() == (scored["runs"] / "cli" / "results.md").read_text()
    with pytest.raises(FgoodError, match="the model gives 3 outputs per image, the benchmark has 8 ID classes"):
        fgood_bench.evaluate_model(build_model("resnet18", 3), scored["benchmark"], root=scored["root"], scorers=["msp"],
                                   image_size=32, workers=0)


def test_evaluate_model_with_a_torchvision_transform(scored, tmp_path):
    from torchvision.transforms import v2

    from fgood_bench.tools.images import IMAGENET_MEAN, IMAGENET_STD

    # the paper's test transform at crop 32 (Geometry.for_crop: resize 37), on uint8 tensors as the CLI does it
    transform = v2.Compose([v2.ToImage(), v2.Resize((37, 37), antialias=True), v2.CenterCrop(32),
                            v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    seen = []

    def counted(image):
        seen.append(image.size)
        return transform(image)

    fgood_bench.evaluate_model(scored["model"], scored["benchmark"], root=scored["root"], scorers=["maxlogit"],
                               ood=scored["ood"], ood_roots=scored["ood_roots"], transform=counted, workers=0,
                               out=tmp_path / "api")
    assert len(seen) == sum(scored["cli"]["counts"].values())  # every image went through the user's transform
    ours = pq.read_table(tmp_path / "api" / "scores.parquet")
    cli = pq.read_table(scored["runs"] / "cli" / "scores.parquet")
    assert ours.column("path").to_pylist() == cli.column("path").to_pylist()
    np.testing.assert_allclose(ours.column("maxlogit").to_numpy(), cli.column("maxlogit").to_numpy(), rtol=0, atol=2e-2)


def test_evaluate_scores_with_pytorch_ood_detectors(scored, tmp_path):
    from pytorch_ood.detector import EnergyBased, MaxLogit

    model = scored["model"].eval()
    kwargs = {"ood": scored["ood"], "ood_roots": scored["ood_roots"], "image_size": 32, "workers": 0}
    max_logit = MaxLogit(model)
    results = fgood_bench.evaluate_scores(lambda x: -max_logit.predict(x), scored["benchmark"], root=scored["root"],
                                          name="maxlogit", out=tmp_path / "ml", **kwargs)
    cli = scored["cli"]
    for ood_set in ("holdout", "places"):
        assert results["metrics"][ood_set]["maxlogit"] == cli["metrics"][ood_set]["maxlogit"]
    report = (tmp_path / "ml" / "results.md").read_text()
    assert results["id_accuracy"] is None and "ID accuracy n/a" in report
    assert "checkpoint `None`" not in report and "given in memory (Python API)" in report
    energy = EnergyBased(model)
    results = fgood_bench.evaluate_scores(lambda x: -energy.predict(x), scored["benchmark"], root=scored["root"],
                                          name="energy", **kwargs)
    for ood_set in ("holdout", "places"):
        for metric, value in cli["metrics"][ood_set]["energy"].items():
            assert results["metrics"][ood_set]["energy"][metric] == pytest.approx(value, abs=1e-6), metric
    with pytest.raises(FgoodError, match="returned 1 values for a batch of"):
        fgood_bench.evaluate_scores(lambda x: torch.zeros(1), scored["benchmark"], root=scored["root"], **kwargs)


@pytest.mark.slow
def test_the_documented_pytorch_ood_example_runs(scored, bird_benchmark, tmp_path, monkeypatch):
    """docs/python-api.md's example, as written, on the generated bird benchmark (a ResNet-18 at 32 px)."""
    text = (Path(__file__).parents[1] / "docs" / "python-api.md").read_text()
    code = next(block.split("```", 1)[0] for block in text.split("```python\n")[1:] if "pytorch_ood" in block)
    out = bird_benchmark["base"] / "out"
    for old, new in (("benchmarks/places365", out / "places365"), ("benchmarks/bird", out / "bird"),
                     ("~/data/CUB_200_2011", scored["root"]), ("~/data/places365", bird_benchmark["places"]),
                     ("runs/bird/standard/classifier.pt", scored["runs"] / "ck.pt"), ("runs/bird/pytorch-ood", tmp_path / "po"),
                     ("resnet50", "resnet18"), ("(512, 512)", "(37, 37)"), ("CenterCrop(448)", "CenterCrop(32)"),
                     ("device=device)", "device=device, workers=0)"), ("device=device,\n", "device=device, workers=0,\n")):
        assert old in code, old
        code = code.replace(old, str(new))
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "docs/python-api.md", "exec"), namespace)
    assert namespace["results"]["scorers"] == ["mahalanobis"] and (tmp_path / "po" / "results.md").is_file()
    assert set(namespace["results"]["metrics"]) == {"holdout", "places365"}


def openood_test_transform(config: dict):
    """OpenOOD v1.5's test preprocessor, written out from openood/preprocessors/test_preprocessor.py and
    base_preprocessor.py: Convert('RGB'), Resize(pre_size, interpolation), CenterCrop(image_size), ToTensor,
    Normalize (normalization_type 'imagenet': ImageNet's mean and std), with the config's values."""
    from torchvision import transforms as tvs_trans

    interpolation = {"bilinear": tvs_trans.InterpolationMode.BILINEAR}[config["interpolation"]]
    assert config["normalization_type"] == "imagenet"
    return tvs_trans.Compose([
        tvs_trans.Lambda(lambda image: image.convert("RGB")),
        tvs_trans.Resize(config["pre_size"], interpolation=interpolation),
        tvs_trans.CenterCrop(config["image_size"]),
        tvs_trans.ToTensor(),
        tvs_trans.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])


@pytest.mark.parametrize("recipe", ["fine-grained", "inet"])
def test_openood_preprocessing_of_the_export_gives_our_input_tensors(tmp_path, recipe):
    """OpenOOD's own transform order, run with the exported config's geometry, produces the tensors
    evaluate feeds the network (within one grey level of rounding): a 500 x 333 photo, as CUB's."""
    from fgood_bench import paper
    from fgood_bench.manifests.export import openood_geometry
    from fgood_bench.tools.images import DeviceBatch, load_image
    from fgood_bench.tools.settings import recipe_geometry

    geometry = recipe_geometry(paper.FINE_GRAINED if recipe == "fine-grained" else paper.INET)
    config = {**openood_geometry(geometry), "normalization_type": "imagenet"}
    assert (config["pre_size"], config["image_size"]) == (([512, 512], 448) if recipe == "fine-grained" else (256, 224))
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:333, 0:500]
    pixels = np.stack([x * 255 // 500, y * 255 // 333, (x + y) % 256], -1) + rng.integers(0, 20, (333, 500, 3))
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(tmp_path / "a.jpg", quality=95)
    with Image.open(tmp_path / "a.jpg") as image:
        theirs = openood_test_transform(config)(image)
    ours = DeviceBatch(torch.device("cpu"))(load_image(tmp_path / "a.jpg", geometry)[None])[0]
    assert ours.shape == theirs.shape == (3, geometry.crop, geometry.crop)
    assert (ours - theirs).abs().max() <= 1.01 / 255 / 0.224  # one uint8 level, normalised
    # what the export wrote before (pre_size 512: the shorter side) is another input altogether
    if recipe == "fine-grained":
        with Image.open(tmp_path / "a.jpg") as image:
            shorter = openood_test_transform({**config, "pre_size": 512})(image)
        assert (ours - shorter).abs().max() > 0.3


def test_the_documented_copy_and_upload_commands_leave_the_output_marker_behind(bird_benchmark, tmp_path, capsys):
    """Issue 25 item 4: the marker that makes an export fgood-bench's output must not travel into OpenOOD's
    root or onto the Hub: docs/manifest.md's copy command, run on a real export, copies everything else."""
    import subprocess

    text = (Path(__file__).parents[1] / "docs" / "manifest.md").read_text()
    copy = next(line for line in text.splitlines() if line.startswith("tar -C exports/bird"))
    upload = next(line for line in text.splitlines() if line.startswith("hf upload"))
    assert '--exclude ".fgood-bench.json"' in upload
    out = bird_benchmark["base"] / "out"
    status, stdout, err = run_cli("export", out / "bird", "--format", "openood", "--out", tmp_path / "exports",
                                  "--far-ood", f"places={out / 'places365'}", capsys=capsys)
    assert status == 0, err
    (tmp_path / "OpenOOD").mkdir()
    command = copy.replace("exports/bird", str(tmp_path / "exports" / "bird")).replace("~/OpenOOD", str(tmp_path / "OpenOOD"))
    subprocess.run(["bash", "-c", command], check=True)
    export = tmp_path / "exports" / "bird"
    copied = sorted(str(p.relative_to(tmp_path / "OpenOOD")) for p in (tmp_path / "OpenOOD").rglob("*") if p.is_file())
    expected = sorted(str(p.relative_to(export)) for p in export.rglob("*") if p.is_file() and p.name != ".fgood-bench.json")
    assert (export / ".fgood-bench.json").is_file() and copied == expected and ".fgood-bench.json" not in copied
