import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from conftest import REFERENCE
from fgood_bench.datasets import imagenet, load_dataset, synthetic
from fgood_bench.datasets.imagenet import imagenet_synsets
from fgood_bench.errors import DatasetError


def test_shipped_synsets_are_the_sorted_official_list():
    synsets = imagenet_synsets()
    reference = [line.split(" ", 1) for line in (REFERENCE / "imagenet" / "synset_words.txt").read_text().splitlines() if line]
    assert list(synsets.items()) == [tuple(pair) for pair in reference]
    assert list(synsets) == sorted(synsets) and len(synsets) == 1000


def test_full_val_gives_official_counts(full_imagenet_val):
    index = load_dataset("imagenet", full_imagenet_val)
    assert index.num_classes == 1000
    assert index.split_counts() == {"train": 2000, "val": 50000}
    row = index.split("val").slice(50, 1).to_pylist()[0]
    assert row == {"path": "val/n01443537/ILSVRC2012_val_00000051.JPEG", "label": 1, "class_name": "n01443537",
                   "split": "val", "wnid": "n01443537"}


def test_documented_counts_are_what_the_adapter_reads_from_real_class_folders(tmp_path, monkeypatch):
    """files_count.stats: Mila's image count of every train/<wnid> and val/<wnid> folder of a real
    torchvision-layout ImageNet. Given folders listing those numbers of images (not written: 1.3
    million files), the adapter gives the counts docs/datasets/imagenet.md states."""
    counts = {"train": {}, "val": {}}
    for line in (REFERENCE / "imagenet" / "files_count.stats").read_text().splitlines():
        count, folder = line.split("\t")
        split, _, wnid = folder.partition("/")
        if wnid:
            counts[split][wnid] = int(count)
            (tmp_path / split / wnid).mkdir(parents=True)
    monkeypatch.setattr(imagenet, "list_images", lambda folder: [f"{folder.name}_{k}.JPEG" for k in
                                                                 range(counts[folder.parent.name][folder.name])])
    index = load_dataset("imagenet", tmp_path)
    per_class = np.bincount(index.split("train").column("label").to_numpy(), minlength=1000)
    assert per_class.tolist() == [counts["train"][wnid] for wnid in imagenet_synsets()]
    train, val = index.split_counts()["train"], index.split_counts()["val"]
    assert (train, val) == (1_281_167, 50_000)
    doc = (Path(__file__).parents[1] / "docs" / "datasets" / "imagenet.md").read_text()
    assert f"train {train:,} images ({per_class.min():,}–{per_class.max():,} per class), val {val:,}" in doc


def _flat_val(tmp_path, wnids):
    root = synthetic.write_imagenet(tmp_path, {w: ["a.JPEG"] for w in imagenet_synsets()}, {})
    for i, _ in enumerate(wnids, 1):
        synthetic.write_image(root / "val" / f"ILSVRC2012_val_{i:08d}.JPEG", i)
    return root


def test_flat_val_with_kaggle_solution(tmp_path):
    wnids = ["n15075141", "n01440764", "n01440764"]
    root = tmp_path / "kaggle"
    data = root / "ILSVRC" / "Data" / "CLS-LOC"
    flat = _flat_val(tmp_path, wnids)
    data.parent.mkdir(parents=True)
    shutil.move(flat, data)
    rows = [f"ILSVRC2012_val_{i:08d},{w} 1 2 30 40 {w} 5 6 70 80" for i, w in enumerate(wnids, 1)]
    synthetic.write_text(root / "LOC_val_solution.csv", ["ImageId,PredictionString", *reversed(rows)])
    val = load_dataset("imagenet", root).split("val").to_pylist()
    solution_rows = list(rows)
    assert [(r["path"], r["label"]) for r in val] == [
        ("ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_00000001.JPEG", 999),
        ("ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_00000002.JPEG", 0),
        ("ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_00000003.JPEG", 0)]
    solution_rows[0] = solution_rows[0].replace(",n15075141", ",n99999999")
    synthetic.write_text(root / "LOC_val_solution.csv", ["ImageId,PredictionString", *solution_rows])
    with pytest.raises(DatasetError, match=r"ILSVRC2012_val_00000001.JPEG: labelled 'n99999999', which is not one of the 1,000"):
        load_dataset("imagenet", root)


def test_flat_val_with_devkit_ids_not_in_sorted_order(tmp_path):
    root = _flat_val(tmp_path, range(2))
    devkit = root / "ILSVRC2012_devkit_t12" / "data"
    devkit.mkdir(parents=True)
    # devkit ILSVRC2012_IDs: 1 -> n01440764 ... but give them in a shuffled order, with a parent synset
    synsets = synthetic._mat_struct([
        {"ILSVRC2012_ID": np.uint16(2), "WNID": "n15075141", "words": "toilet tissue", "num_children": np.uint8(0)},
        {"ILSVRC2012_ID": np.uint16(1), "WNID": "n01440764", "words": "tench", "num_children": np.uint8(0)},
        {"ILSVRC2012_ID": np.uint16(1001), "WNID": "n00001740", "words": "entity", "num_children": np.uint8(3)},
    ])
    scipy.io.savemat(devkit / "meta.mat", {"synsets": synsets})
    synthetic.write_text(devkit / "ILSVRC2012_validation_ground_truth.txt", ["2", "1"])
    val = load_dataset("imagenet", root).split("val")
    assert val.column("wnid").to_pylist() == ["n15075141", "n01440764"]
    synthetic.write_text(devkit / "ILSVRC2012_validation_ground_truth.txt", ["2", "7"])
    with pytest.raises(DatasetError, match=r"ILSVRC2012_validation_ground_truth.txt: line 2: ILSVRC2012_ID 7 is not a class"):
        load_dataset("imagenet", root)
    synthetic.write_text(devkit / "ILSVRC2012_validation_ground_truth.txt", ["2", "1001"])  # a parent synset
    with pytest.raises(DatasetError, match=r"line 2: ILSVRC2012_ID 1001 is not a class \(leaf synset\)"):
        load_dataset("imagenet", root)


def test_flat_val_with_torchvision_meta_bin(tmp_path):
    root = _flat_val(tmp_path, range(2))
    torch.save(({"n01440764": ("tench",)}, ["n01530575", "n01440764"]), root / "meta.bin")
    wnids = list(imagenet_synsets())
    assert load_dataset("imagenet", root).split("val").column("label").to_pylist() == [wnids.index("n01530575"), 0]


def test_flat_val_without_labels(tmp_path):
    root = _flat_val(tmp_path / "plain", range(2))
    with pytest.raises(DatasetError) as caught:
        load_dataset("imagenet", root)
    assert str(caught.value).startswith(f"{root / 'val'}: flat val folder without labels: expected LOC_val_solution.csv, "
                                        f"meta.bin or ILSVRC2012_devkit_t12/data/ in {root}, or val/<wnid>/ sub-folders")


def test_kaggle_flat_val_without_labels_names_its_folder(tmp_path):
    root = tmp_path / "kaggle"
    data = root / "ILSVRC" / "Data" / "CLS-LOC"
    data.parent.mkdir(parents=True)
    shutil.move(_flat_val(tmp_path / "plain", range(2)), data)
    with pytest.raises(DatasetError) as caught:
        load_dataset("imagenet", root)
    assert str(caught.value).startswith(f"{data / 'val'}: flat val folder without labels: expected LOC_val_solution.csv, "
                                        f"meta.bin or ILSVRC2012_devkit_t12/data/ in {root}, "
                                        "or ILSVRC/Data/CLS-LOC/val/<wnid>/ sub-folders")


def test_missing_and_unknown_class_folders(tmp_path):
    wnids = list(imagenet_synsets())
    root = synthetic.write_imagenet(tmp_path, {w: ["a.JPEG"] for w in wnids[:-2]}, {})
    with pytest.raises(DatasetError, match=r"train: 2 of the 1000 class folders are missing, first n13133613"):
        load_dataset("imagenet", root)
    (root / "train" / "n99999999").mkdir()
    with pytest.raises(DatasetError, match=r"train/n99999999: not an ImageNet-1k wnid folder"):
        load_dataset("imagenet", root)
