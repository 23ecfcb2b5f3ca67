import pytest

from conftest import REFERENCE, replace_file
from fgood_bench.datasets import load_dataset
from fgood_bench.errors import DatasetError


def test_official_lists_have_their_quirks():
    raw = (REFERENCE / "tsinghua_dogs" / "train.lst").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf.//1043-n000001-Shiba_Dog/") and b"\r\n" in raw


def test_full_download_gives_official_counts(full_thudogs):
    index = load_dataset("thudogs", full_thudogs)
    assert index.num_classes == 130
    assert index.split_counts() == {"train": 65228, "val": 5200}


def test_first_line_after_the_bom_is_kept(full_thudogs):
    paths = load_dataset("thudogs", full_thudogs).split("train").column("path").to_pylist()
    assert paths[0] == "low-resolution/1043-n000001-Shiba_Dog/n100001.jpeg"


def test_classes_follow_breed_ids_not_file_order(full_thudogs):
    index = load_dataset("thudogs", full_thudogs)
    # the lists put pug (n000130) before papillon (n000129)
    assert index.classes[0] == "Shiba_Dog"
    assert index.classes[128:] == ("papillon", "pug")
    assert "Fila Braziliero" in index.classes
    val = index.split("val").to_pylist()
    assert all(row["path"].split("/")[1].split("-")[1] == f"n{row['label'] + 1:06d}" for row in val)
    assert {sum(1 for r in val if r["label"] == c) for c in range(130)} == {40}


def test_folder_with_a_space(full_thudogs):
    index = load_dataset("thudogs", full_thudogs)
    fila = [p for p in index.split("train").column("path").to_pylist() if "Fila Braziliero" in p]
    assert fila and fila[0].startswith("low-resolution/220-n000032-Fila Braziliero/")


def test_high_resolution_preferred_and_variant_option(sample):
    root = sample("thudogs")
    (root / "low-resolution").rename(root / "high-resolution")
    assert load_dataset("thudogs", root).samples.column("path")[0].as_py().startswith("high-resolution/")
    with pytest.raises(DatasetError, match=r"low-resolution: folder missing \(asked for the low-resolution images\)"):
        load_dataset("thudogs", root, variant="low")
    with pytest.raises(DatasetError, match=r"variant must be 'low' or 'high', got 'medium'"):
        load_dataset("thudogs", root, variant="medium")


def test_lists_found_in_split_folder_and_val_list_absent(sample):
    root = sample("thudogs")
    (root / "TrainAndValList").rename(root / "split")
    (root / "split" / "validation.lst").unlink()
    index = load_dataset("thudogs", root)
    assert index.split_counts() == {"train": 12}
    assert "validation.lst not found" in index.absent["val"]


def test_no_lists(sample):
    root = sample("thudogs")
    for name in ("train.lst", "validation.lst"):
        (root / "TrainAndValList" / name).unlink()
    with pytest.raises(DatasetError, match=r"split lists train.lst / validation.lst not found in TrainAndValList/"):
        load_dataset("thudogs", root)


def test_malformed_entry(sample):
    root = sample("thudogs")
    replace_file(root / "TrainAndValList" / "train.lst", "\ufeff.//6-n000001-Shiba_Dog/n100000.jpeg\r\nShiba_Dog.jpeg\r\n")
    with pytest.raises(DatasetError, match=r"train.lst: line 2: expected './/<count>-n<id>-<Breed>/<image>', got 'Shiba_Dog.jpeg'"):
        load_dataset("thudogs", root)


def test_not_a_dogs_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"not a Tsinghua Dogs download: expected low-resolution or high-resolution"):
        load_dataset("thudogs", tmp_path)
