import pytest

from conftest import REFERENCE, replace_file
from fgood_bench.datasets import load_dataset, synthetic
from fgood_bench.datasets.check import inspect_dataset
from fgood_bench.errors import DatasetError


def test_val_only_copy_gives_official_counts(full_places_val):
    assert not (full_places_val / "categories_places365.txt").read_bytes().endswith(b"\n")  # the real file
    index = load_dataset("places365", full_places_val)
    assert index.num_classes == 365
    assert index.split_counts() == {"val": 36500}
    assert "data_256" in index.absent["train"]
    assert index.classes[0] == "/a/airfield" and index.classes[364] == "/z/zen_garden"
    assert index.classes[15] == "/a/arena/hockey"
    row = index.samples.slice(0, 1).to_pylist()[0]
    assert row["path"] == "val_256/Places365_val_00000001.jpg" and row["label"] == 31


def test_train_split_with_leading_slash_paths(tmp_path):
    categories = [line.split()[0] for line in (REFERENCE / "places365" / "categories_places365.txt").read_text().splitlines()]
    train = [("/a/airfield/00000000.jpg", 0), ("/a/arena/hockey/00000001.jpg", 15)]
    root = synthetic.write_places365(tmp_path, categories, [("Places365_val_00000001.jpg", 3)], train)
    (root / "data_256").rename(root / "data_256_standard")  # torchvision's name for it
    index = load_dataset("places365", root)
    assert index.split("train").column("path").to_pylist() == [
        "data_256_standard/a/airfield/00000000.jpg", "data_256_standard/a/arena/hockey/00000001.jpg"]
    assert inspect_dataset("places365", root).missing == {"train": [], "val": []}


def test_large_variant(sample):
    root = sample("places365")
    (root / "val_256").rename(root / "val_large")
    assert load_dataset("places365", root, variant="large").split_counts() == {"val": 9}
    with pytest.raises(DatasetError, match=r"no official split of Places365-Standard is present"):
        load_dataset("places365", root)


def test_val_images_without_their_list(sample):
    root = sample("places365")
    (root / "places365_val.txt").unlink()
    with pytest.raises(DatasetError, match=r"no official split .*val: places365_val.txt not found"):
        load_dataset("places365", root)


def test_label_out_of_range(sample):
    root = sample("places365")
    replace_file(root / "places365_val.txt", "Places365_val_00000001.jpg 0\nPlaces365_val_00000002.jpg 365\n")
    with pytest.raises(DatasetError, match=r"places365_val.txt: line 2: label 365 out of range 0..2"):
        load_dataset("places365", root)


def test_categories_with_gap(sample):
    root = sample("places365")
    replace_file(root / "categories_places365.txt", "/a/airfield 0\n/z/zen_garden 2")
    with pytest.raises(DatasetError, match=r"categories_places365.txt: indices must run 0..1 without gaps"):
        load_dataset("places365", root)
