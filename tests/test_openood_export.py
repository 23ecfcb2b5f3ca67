"""`export --format openood` against what OpenOOD v1.5 reads: every postprocessor config it ships,
merged with the exported dataset configs, finds the splits its dataloaders, evaluator and
postprocessor read (issue 25 items 1 and 2), and an outlier set is exported as OE training data.

The reader below is our own, written from OpenOOD's source at Jingkang50/OpenOOD commit
3c35632ee91b54b09d1f085d04f94744cece7d0b (v1.5 and after):
- openood/utils/config.py: ``Config`` flattens each YAML file to dotted leaf keys (``init_assign``,
  ``traverse_dfs``), ``merge_configs`` assigns them file after file (a later leaf wins, a list is a
  leaf, a dict merges key by key), ``parse_refs`` replaces a value ``'@{a.b}'`` with the value at
  ``a.b``; a missing key read by attribute is None.
- openood/datasets/utils.py: ``get_dataloader`` builds one loader per ``dataset.split_names`` entry
  from ``dataset.<split>.{dataset_class,imglist_pth,data_dir,batch_size,shuffle}`` and
  ``dataset.{name,num_classes,num_workers,num_gpus,num_machines}``; ``get_ood_dataloader`` one per
  ``ood_dataset.split_names`` entry: ``val`` from ``ood_dataset.val.{imglist_pth,data_dir}``, the
  others from ``<split>.datasets`` and ``<split>.<set>.{imglist_pth,data_dir}``.
- openood/datasets/imglist_dataset.py: a line is ``line.strip('\\n').split(' ', 1)``, the image at
  ``os.path.join(data_dir, tokens[0])``, the label ``ast.literal_eval(tokens[1])`` (-1: OOD).
- openood/evaluators/ood_evaluator.py ``eval_ood``: asserts ``'test'`` in the ID loaders and, with
  ``postprocessor.APS_mode``, ``'val'`` in the ID and the OOD loaders; then near- and far-OOD.
- openood/pipelines/train_oe_pipeline.py: ``loader_dict['train'], ['val'], ['oe'], ['test']``.
"""

from __future__ import annotations

import ast
import copy
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from conftest import run_cli
from fgood_bench.datasets import synthetic
from fgood_bench.manifests.image_sets import id_validation
from fgood_bench.manifests.manifest import Manifest

ROOT = Path(__file__).parents[1]

# Every postprocessor config of OpenOOD's configs/postprocessors/ (commit above): its APS_mode (None:
# the file sets none, read as False) and the loaders its postprocessor's setup() reads
# (openood/postprocessors/*.py: id_loader_dict['train'|'val'|'test'], ood_loader_dict['val']).
# grood.yaml: Config loads '.yml' files only; it is listed as the loaders it reads would be.
TRAIN, VAL, TEST, OOD_VAL = "dataset.train", "dataset.val", "dataset.test", "ood_dataset.val"
POSTPROCESSORS = {
    "adascale_a": (True, [VAL]), "adascale_l": (True, [VAL]), "ash": (True, []), "cfood": (False, []),
    "cider": (True, [TRAIN]), "conf_branch": (False, []), "cutpaste": (None, [TRAIN]), "dice": (False, [TRAIN]),
    "draem": (None, []), "dropout": (False, []), "dsvdd": (None, [TRAIN]), "ebo": (True, []), "ensemble": (None, []),
    "fdbd": (True, [TRAIN]), "gen": (True, []), "gmm": (None, [TRAIN]), "godin": (False, []), "gradnorm": (False, []),
    "gram": (True, [TRAIN]), "grood": (True, [TRAIN, VAL, OOD_VAL]), "iodin": (True, []), "kdad": (None, []),
    "klm": (False, [VAL]), "knn": (True, [TRAIN]), "mcd": (False, []), "mcm": (False, []), "mds": (False, [TRAIN]),
    "mds_ensemble": (True, [TRAIN, VAL, OOD_VAL]), "mls": (False, []), "mos": (None, []), "msp": (False, []),
    "nci": (True, [TRAIN]), "nnguide": (False, [TRAIN]), "npos": (True, [TRAIN]), "odin": (True, []),
    "opengan": (False, []), "openmax": (False, [TRAIN]), "patch": (None, [TRAIN]), "rankfeat": (False, []),
    "rd4ad": (False, []), "react": (True, [VAL]), "relation": (True, [TRAIN]), "residual": (None, [VAL, TEST]),
    "reweightood": (False, [TRAIN]), "rmds": (False, [TRAIN]), "rot": (False, []), "rotpred": (False, []),
    "rts": (False, []), "scale": (True, []), "she": (False, [TRAIN]), "ssd": (True, [TRAIN]), "t2fnorm": (None, []),
    "temp_scaling": (False, [VAL]), "vim": (True, [TRAIN]), "vra": (True, [VAL]),
}
# configs/pipelines/test/test_ood.yml: the top-level keys the dataset configs refer to
TEST_OOD = {"num_gpus": 1, "num_workers": 0, "num_machines": 1, "pipeline": {"name": "test_ood"},
            "evaluator": {"name": "ood", "ood_scheme": "ood"}}
PREPROCESSOR_KEYS = ("pre_size", "image_size", "interpolation", "normalization_type")  # base_preprocessor.py


# ----------------------------------------------------------------- OpenOOD's config semantics
def leaves(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            yield from leaves(value, full)
        else:
            yield full, value


def assign(config: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        if not isinstance(config.get(key), dict):
            config[key] = {}
        config = config[key]
    config[last] = copy.deepcopy(value)


def lookup(config: dict, dotted: str):
    for key in dotted.split("."):
        if not isinstance(config, dict) or key not in config:
            raise KeyError(dotted)
        config = config[key]
    return config


def merged(*documents: dict) -> dict:
    """merge_configs(Config(a), Config(b), ...) then parse_refs()."""
    config: dict = {}
    for document in documents:
        for key, value in leaves(document):
            assign(config, key, value)
    for key, value in list(leaves(config)):
        if isinstance(value, str) and value.startswith("@{") and value.endswith("}") and value.count("@") == 1:
            assign(config, key, lookup(config, value[2:-1]))
    return config


def read_list(checkout: Path, data_dir: str, imglist_pth: str) -> list[tuple[Path, int]]:
    """ImglistDataset's reading of a list: each line's image path under data_dir and its label."""
    rows = []
    for line in (checkout / imglist_pth).read_text().splitlines(keepends=True):
        tokens = line.strip("\n").split(" ", 1)
        assert not tokens[0].startswith("/"), line
        label = ast.literal_eval(tokens[1])
        assert isinstance(label, int), line
        rows.append((checkout / os.path.join(data_dir, tokens[0]), label))
    return rows


def dataloaders(checkout: Path, config: dict) -> tuple[dict, dict]:
    """The rows get_dataloader and get_ood_dataloader would load, every key they read looked up."""
    dataset, ood = config["dataset"], config["ood_dataset"]
    for key in ("name", "num_classes", "num_workers", "num_gpus", "num_machines", *PREPROCESSOR_KEYS):
        lookup(dataset, key)
    assert all(isinstance(dataset[k], int) for k in ("num_workers", "num_gpus", "num_machines"))
    id_rows = {}
    for split in dataset["split_names"]:
        split_config = dataset[split]
        assert split_config["dataset_class"] == "ImglistDataset"
        assert isinstance(split_config["batch_size"], int) and isinstance(split_config["shuffle"], bool)
        id_rows[split] = read_list(checkout, split_config["data_dir"], split_config["imglist_pth"])
    for key in ("name", "num_classes", "dataset_class", "batch_size", "shuffle", "num_workers"):
        lookup(ood, key)
    ood_rows = {}
    for split in ood["split_names"]:
        if split == "val":
            ood_rows[split] = read_list(checkout, ood["val"]["data_dir"], ood["val"]["imglist_pth"])
        else:
            ood_rows[split] = {name: read_list(checkout, ood[split][name]["data_dir"], ood[split][name]["imglist_pth"])
                               for name in ood[split]["datasets"]}
    return id_rows, ood_rows


def check_rows(rows: list[tuple[Path, int]], labels: range | tuple) -> None:
    assert rows
    for path, label in rows:
        assert path.is_file(), path
        assert label in labels, (path, label)


# ----------------------------------------------------------------- exports
@pytest.fixture(scope="module")
def exported(bird_benchmark, dozen_birds, tmp_path_factory):
    """The bird benchmark exported with a far-OOD set, its ID images linked in, and 2 synthetic
    validation outliers per kind; ``checkout``: the export as copied into an OpenOOD checkout."""
    out = bird_benchmark["base"] / "out"
    base = tmp_path_factory.mktemp("openood")
    from fgood_bench.cli import main
    assert main(["export", str(out / "bird"), "--format", "openood", "--out", str(base), "--root", str(dozen_birds),
                 "--far-ood", f"places={out / 'places365'}", "--ood-root", f"places={bird_benchmark['places']}",
                 "--link-images", "symlink", "--val-ood-size", "2", "--seed", "3"]) == 0
    return {"checkout": base / "bird", "benchmark": Manifest.load(out / "bird"), "root": dozen_birds}


def exported_config(checkout: Path, *names: str) -> list[dict]:
    return [yaml.safe_load((checkout / "configs" / "datasets" / name).read_text()) for name in names]


@pytest.mark.parametrize("postprocessor", sorted(POSTPROCESSORS))
def test_every_openood_postprocessor_config_finds_what_it_reads(exported, postprocessor):
    checkout = exported["checkout"]
    aps, reads = POSTPROCESSORS[postprocessor]
    config = merged(*exported_config(checkout, "bird/bird.yml", "bird/bird_ood.yml"), TEST_OOD,
                    {"postprocessor": {"name": postprocessor, **({} if aps is None else {"APS_mode": aps})}})
    id_rows, ood_rows = dataloaders(checkout, config)
    classes = range(config["dataset"]["num_classes"])
    assert "test" in id_rows  # ood_evaluator.eval_ood
    if config["postprocessor"].get("APS_mode"):
        assert "val" in id_rows and "val" in ood_rows
    for key in reads:
        part, split = key.split(".")
        assert split in (id_rows if part == "dataset" else ood_rows), key
    for split, rows in id_rows.items():
        check_rows(rows, classes)
    check_rows(ood_rows["val"], (-1,))
    for split in ("nearood", "farood"):  # _eval_ood averages over each; an empty one fails in _save_csv
        assert ood_rows[split] and all(check_rows(rows, (-1,)) is None for rows in ood_rows[split].values())


def test_validation_lists_are_the_images_evaluate_holds_out(exported):
    """dataset.val: the ID validation images `evaluate --seed 3` carves (left out of train); ood_dataset.val:
    Appendix D.3's outliers, the same bytes on every export with the same seed."""
    checkout, benchmark = exported["checkout"], exported["benchmark"]
    lists = checkout / "data" / "benchmark_imglist" / "bird"
    validation = id_validation(benchmark, exported["root"], 3)
    val = [line.split(" ")[0] for line in (lists / "val_bird.txt").read_text().splitlines()]
    train = [line.split(" ")[0] for line in (lists / "train_bird.txt").read_text().splitlines()]
    assert val == validation.images.paths and not set(val) & set(train)
    assert sorted(val + train) == sorted(benchmark.split("id_train").paths)
    assert "seed 3" in (checkout / "configs" / "datasets" / "bird" / "bird.yml").read_text().splitlines()[0]
    outliers = (lists / "val_synthetic-val.txt").read_text().splitlines()
    assert len(outliers) == 16 and all(line.endswith(" -1") for line in outliers)
    images = checkout / "data" / "images_fgood" / "synthetic-val"
    assert all((images / line.split(" ")[0]).is_file() for line in outliers)
    ood = exported_config(checkout, "bird/bird_ood.yml")[0]["ood_dataset"]
    assert ood["split_names"] == ["val", "nearood", "farood"]
    assert exported_config(checkout, "bird/bird.yml")[0]["dataset"]["split_names"] == ["train", "val", "test"]


def test_the_same_seed_gives_the_same_export(exported, bird_benchmark, tmp_path):
    out = bird_benchmark["base"] / "out"
    from fgood_bench.cli import main
    assert main(["export", str(out / "bird"), "--format", "openood", "--out", str(tmp_path), "--root", str(exported["root"]),
                 "--val-ood-size", "2", "--seed", "3"]) == 0
    for relpath in ("data/benchmark_imglist/bird/val_bird.txt", "data/benchmark_imglist/bird/val_synthetic-val.txt",
                    "data/images_fgood/synthetic-val/blobs/00001.png", "data/images_fgood/synthetic-val/speckle/00000.png"):
        assert (tmp_path / "bird" / relpath).read_bytes() == (exported["checkout"] / relpath).read_bytes(), relpath


def test_a_given_ood_validation_set_and_no_root(bird_benchmark, tmp_path, capsys):
    """--val-ood NAME=MANIFEST lists a given OOD set as ood_dataset.val; without it and without --root
    there is none, and the export says so."""
    out = bird_benchmark["base"] / "out"
    status, stdout, err = run_cli("export", out / "bird", "--format", "openood", "--out", tmp_path / "a",
                                  "--far-ood", f"far={out / 'places365'}", "--val-ood", f"val={out / 'places365'}", capsys=capsys)
    assert status == 0 and "ood_dataset.val" not in err, err
    ood = yaml.safe_load((Path(stdout.strip()) / "configs/datasets/bird/bird_ood.yml").read_text())["ood_dataset"]
    assert ood["val"] == {"data_dir": "./data/images_fgood/val/", "imglist_pth": "./data/benchmark_imglist/bird/val_val.txt"}
    status, stdout, err = run_cli("export", out / "bird", "--format", "openood", "--out", tmp_path / "b", capsys=capsys)
    assert status == 0 and "no OOD validation list (ood_dataset.val)" in err and "--val-ood NAME=MANIFEST" in err
    ood = yaml.safe_load((Path(stdout.strip()) / "configs/datasets/bird/bird_ood.yml").read_text())["ood_dataset"]
    assert ood["split_names"] == ["nearood", "farood"] and "val" not in ood
    status, _, err = run_cli("export", out / "bird", "--format", "openood", "--out", tmp_path / "c",
                             "--val-ood", f"holdout={out / 'places365'}", capsys=capsys)
    assert status == 2 and "--val-ood 'holdout'" in err


def one_checkout(checkout: Path, *exports: Path) -> Path:
    """The exports copied into one OpenOOD checkout (as links to their files)."""
    for source in exports:
        for path in source.rglob("*"):
            if path.is_file() or path.is_symlink():
                target = checkout / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    target.symlink_to(path.resolve())
    return checkout


@pytest.fixture(scope="module")
def outliers(tmp_path_factory):
    base = tmp_path_factory.mktemp("oe")
    minc = synthetic.write_sample("minc2500", base / "minc")
    from fgood_bench.cli import main
    assert main(["filter-outliers", "none", "--source", "minc2500", "--root", str(minc), "--out", str(base / "o")]) == 0
    return base / "o" / "minc2500-unfiltered", minc


def test_an_outlier_set_is_exported_as_openood_oe_training_data(exported, outliers, tmp_path, capsys):
    """filter-outliers' set: OpenOOD's OE list (`path -1`, uniform soft label) and dataset.oe, merged after
    the benchmark's config as the train_oe pipeline reads it (train, val, oe, test)."""
    folder, minc = outliers
    status, stdout, err = run_cli("export", folder, "--format", "openood", "--out", tmp_path, "--root", minc,
                                  "--link-images", "symlink", capsys=capsys)
    assert status == 0, err
    name = folder.name
    export = Path(stdout.strip())
    lists = sorted(p.name for p in (export / "data" / "benchmark_imglist" / name).iterdir())
    assert lists == [f"train_{name}.txt"] and "warning" not in err
    checkout = one_checkout(tmp_path / "OpenOOD", exported["checkout"], export)
    config = merged(*exported_config(checkout, "bird/bird.yml", f"{name}/{name}_oe.yml"),
                    {"num_gpus": 1, "num_workers": 0, "num_machines": 1})
    dataset = config["dataset"]
    assert dataset["split_names"] == ["train", "oe", "val", "test"] and dataset["name"] == "bird"
    rows = {}
    for split in ("train", "val", "oe", "test"):  # train_oe_pipeline.py
        split_config = dataset[split]
        assert split_config["dataset_class"] == "ImglistDataset" and isinstance(split_config["batch_size"], int)
        rows[split] = read_list(checkout, split_config["data_dir"], split_config["imglist_pth"])
    check_rows(rows["oe"], (-1,))
    assert len(rows["oe"]) == len(Manifest.load(folder).split("train"))
    for split in ("train", "val", "test"):
        check_rows(rows[split], range(dataset["num_classes"]))


@pytest.mark.parametrize("doc", ["manifest.md", "python-api.md"])
def test_documented_openood_commands_name_files_of_a_real_export(doc, exported, tmp_path, capsys):
    """The docs' `python main.py --config ...` lines: every configs/datasets/ file they name is in a real
    export (the bird benchmark, and an outlier set of the documented name)."""
    text = (ROOT / "docs" / doc).read_text()
    commands = [" ".join(block.split()) for block in re.findall(r"python main\.py --config(?:.|\n)*?(?=\n```|\n\n)", text)]
    assert any("train_oe.yml" in c for c in commands) and any("postprocessors/ebo.yml" in c for c in commands)
    named = {path for command in commands for path in re.findall(r"configs/datasets/\S+\.yml", command)}
    oe_name = next(re.fullmatch(r"configs/datasets/([\w.-]+)/\1_oe\.yml", p).group(1) for p in named if p.endswith("_oe.yml"))
    minc = synthetic.write_sample("minc2500", tmp_path / "minc")
    status, out, err = run_cli("filter-outliers", "none", "--source", "minc2500", "--root", minc, "--out", tmp_path / "o",
                               "--name", oe_name, capsys=capsys)
    assert status == 0, err
    status, out, err = run_cli("export", out.strip(), "--format", "openood", "--out", tmp_path / "x", capsys=capsys)
    assert status == 0, err
    available = {str(p.relative_to(exported["checkout"])) for p in (exported["checkout"] / "configs").rglob("*.yml")}
    available |= {str(p.relative_to(Path(out.strip()))) for p in (Path(out.strip()) / "configs").rglob("*.yml")}
    assert named and not named - available, named - available


def test_the_documented_python_export_runs(bird_benchmark, dozen_birds, tmp_path, monkeypatch, capsys):
    """docs/python-api.md's "Exporting to OpenOOD" code as written, on the generated bird benchmark, a
    Places365 sample and a MINC sample named as the docs' outlier set; it prints the config files it says."""
    out = bird_benchmark["base"] / "out"
    minc = synthetic.write_sample("minc2500", tmp_path / "minc")
    from fgood_bench.cli import main
    assert main(["filter-outliers", "none", "--source", "minc2500", "--root", str(minc), "--out", str(tmp_path / "outliers"),
                 "--name", "webvision-bird"]) == 0
    work = tmp_path / "work"
    for link, target in (("benchmarks/bird", out / "bird"), ("benchmarks/places365", out / "places365"),
                         ("data/CUB_200_2011", dozen_birds), ("data/places365", bird_benchmark["places"]),
                         ("data/WebVision", minc), ("outliers/webvision-bird", tmp_path / "outliers" / "webvision-bird")):
        (work / link).parent.mkdir(parents=True, exist_ok=True)
        (work / link).symlink_to(target, target_is_directory=True)
    section = (ROOT / "docs" / "python-api.md").read_text().split("## Exporting to OpenOOD")[1].split("\n## ")[0]
    code = section.split("```python\n")[1].split("```")[0]
    assert 'Path("~/data").expanduser()' in code
    code = code.replace('Path("~/data").expanduser()', repr(str(work / "data")).join(("Path(", ")")))
    monkeypatch.chdir(work)
    capsys.readouterr()
    exec(compile(code, "docs/python-api.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    promised = [line.split("# ")[1] for line in code.splitlines() if line.startswith("print(")]
    assert printed == promised
    ood = yaml.safe_load((work / "exports/bird/configs/datasets/bird/bird_ood.yml").read_text())["ood_dataset"]
    assert ood["split_names"] == ["val", "nearood", "farood"] and ood["farood"]["datasets"] == ["places365"]


@pytest.mark.skipif(not os.environ.get("OPENOOD_ROOT"), reason="OPENOOD_ROOT (an OpenOOD checkout with its deps) not set")
def test_openood_itself_loads_the_export(exported, outliers, tmp_path, monkeypatch, capsys):
    """With OPENOOD_ROOT: OpenOOD's own Config, merge_configs and get_dataloader / get_ood_dataloader on the
    export, for every postprocessor config shipped in OPENOOD_ROOT/configs/postprocessors, and its OE
    training configs with an exported outlier set."""
    openood = Path(os.environ["OPENOOD_ROOT"])
    folder, minc = outliers
    status, out, err = run_cli("export", folder, "--format", "openood", "--out", tmp_path / "x", "--root", minc,
                               "--link-images", "symlink", capsys=capsys)
    assert status == 0, err
    monkeypatch.syspath_prepend(str(openood))
    monkeypatch.chdir(one_checkout(tmp_path / "OpenOOD", exported["checkout"], Path(out.strip())))
    from openood.datasets import get_dataloader, get_ood_dataloader
    from openood.utils.config import Config, merge_configs

    for number, postprocessor in enumerate(sorted((openood / "configs" / "postprocessors").glob("*.yml"))):
        config = merge_configs(Config("configs/datasets/bird/bird.yml"), Config("configs/datasets/bird/bird_ood.yml"),
                               Config(str(openood / "configs/networks/resnet50.yml")),
                               Config(str(openood / "configs/pipelines/test/test_ood.yml")),
                               Config(str(openood / "configs/preprocessors/base_preprocessor.yml")), Config(str(postprocessor)))
        config.parse_refs()
        id_loaders, ood_loaders = get_dataloader(config), get_ood_dataloader(config)
        assert {"train", "val", "test"} <= set(id_loaders) and {"val", "nearood", "farood"} <= set(ood_loaders)
        if config.postprocessor.APS_mode:
            assert "val" in id_loaders and "val" in ood_loaders
        for loader in [*id_loaders.values(), ood_loaders["val"], *ood_loaders["nearood"].values()] if number == 0 else []:
            sample = loader.dataset[0]  # ImglistDataset reads the first line's image (the same for every config)
            assert tuple(sample["data"].shape) == (3, 448, 448)
    oe = f"configs/datasets/{folder.name}/{folder.name}_oe.yml"
    config = merge_configs(Config("configs/datasets/bird/bird.yml"), Config(oe),
                           *(Config(str(openood / name)) for name in (
                               "configs/networks/resnet50.yml", "configs/pipelines/train/baseline.yml",
                               "configs/pipelines/train/train_oe.yml", "configs/preprocessors/base_preprocessor.yml")))
    config.parse_refs()
    loaders = get_dataloader(config)  # train_oe_pipeline.py reads these four
    assert set(loaders) == {"train", "oe", "val", "test"}
    assert loaders["oe"].dataset[0]["label"] == -1 and loaders["train"].dataset[0]["label"] >= 0
    assert sys.modules["openood"].__file__.startswith(str(openood))


def test_a_benchmark_too_small_to_hold_out_validation_exports_without_val_and_says_so(bird_benchmark, dozen_birds,
                                                                                       tmp_path, capsys, monkeypatch):
    """Every class with one id_train image (a sample benchmark): the export still runs, lists all of id_train,
    makes no OOD validation outliers, and warns in one line that OpenOOD's val-reading configs will fail."""
    from types import SimpleNamespace

    from fgood_bench.manifests.image_sets import can_hold_out_validation

    out = bird_benchmark["base"] / "out"
    bird = Manifest.load(out / "bird")
    one_each = {}
    for path, label in zip(bird.split("id_train").paths, bird.split("id_train").labels):
        one_each.setdefault(label, path)
    tiny = SimpleNamespace(split_names=["id_train", "id_test", "ood_test"],
                           split=lambda name: SimpleNamespace(labels=sorted(one_each)))
    assert can_hold_out_validation(bird) and not can_hold_out_validation(tiny)

    import fgood_bench.manifests.export as export

    monkeypatch.setattr(export, "can_hold_out_validation", lambda manifest: False)
    status, stdout, err = run_cli("export", out / "bird", "--format", "openood", "--out", tmp_path, "--root", dozen_birds,
                                  "--far-ood", f"places={out / 'places365'}", capsys=capsys)
    assert status == 0, err
    assert err.count("\n") == 1 and "warning: no validation lists (dataset.val, ood_dataset.val)" in err
    checkout = Path(stdout.strip())
    config, ood = exported_config(checkout, "bird/bird.yml", "bird/bird_ood.yml")
    assert config["dataset"]["split_names"] == ["train", "test"] and ood["ood_dataset"]["split_names"] == ["nearood", "farood"]
    assert not (checkout / "data" / "images_fgood").exists()
    train = (checkout / config["dataset"]["train"]["imglist_pth"]).read_text().splitlines()
    assert len(train) == len(bird.split("id_train").paths)


def test_a_negative_seed_is_refused_on_the_command_line(bird_benchmark, tmp_path, capsys):
    status, _, err = run_cli("export", bird_benchmark["base"] / "out" / "bird", "--format", "openood", "--out", tmp_path,
                             "--seed", "-1", capsys=capsys)
    assert status == 2 and "--seed: must be 0 or more, got -1" in err and "Traceback" not in err
