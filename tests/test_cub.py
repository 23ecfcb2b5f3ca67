import pytest

from conftest import replace_file
from fgood_bench.datasets import load_dataset
from fgood_bench.errors import DatasetError


def test_full_download_gives_official_counts(full_cub):
    index = load_dataset("cub", full_cub)
    assert index.num_classes == 200
    assert index.split_counts() == {"train": 5994, "test": 5794}
    assert index.classes[0] == "Black_footed_Albatross"
    assert index.classes[140] == "Artic_Tern"  # names kept as published, typo included


def test_rows_join_the_three_id_files(full_cub):
    index = load_dataset("cub", full_cub)
    # images.txt line 1 is a test image (train_test_split "1 0"), line 2 a training image
    by_path = {row["path"]: row for row in index.samples.to_pylist()}
    first = by_path["images/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg"]
    assert (first["label"], first["class_name"], first["split"]) == (0, "Black_footed_Albatross", "test")
    second = by_path["images/001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg"]
    assert second["split"] == "train"
    last = by_path["images/200.Common_Yellowthroat/Common_Yellowthroat_0055_190967.jpg"]
    assert (last["label"], last["class_name"]) == (199, "Common_Yellowthroat")


def test_root_may_be_the_folder_above(full_cub):
    assert load_dataset("cub", full_cub.parent).root == full_cub


def test_trailing_space_and_crlf_are_tolerated(tmp_path, sample):
    root = sample("cub")
    text = (root / "classes.txt").read_text()
    replace_file(root / "classes.txt", text.replace("\n", " \r\n"))
    assert load_dataset("cub", root).classes[0] == "Sample_Bird_1"


def test_not_a_cub_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"not a CUB-200-2011 download: expected images.txt or images .*docs/datasets/cub.md"):
        load_dataset("cub", tmp_path)


def test_missing_metadata_file(sample):
    root = sample("cub")
    (root / "train_test_split.txt").unlink()
    with pytest.raises(DatasetError, match=r"train_test_split.txt: file is missing"):
        load_dataset("cub", root)


def test_malformed_line(sample):
    root = sample("cub")
    replace_file(root / "image_class_labels.txt", "1 1\n2\n")
    with pytest.raises(DatasetError, match=r"image_class_labels.txt: line 2: expected '<image_id> <class_id>', got '2'"):
        load_dataset("cub", root)


def test_class_id_out_of_range(sample):
    root = sample("cub")
    lines = (root / "image_class_labels.txt").read_text().splitlines()
    lines[3] = "4 201"
    replace_file(root / "image_class_labels.txt", "\n".join(lines))
    with pytest.raises(DatasetError, match=r"image_class_labels.txt: line 4: class id 201 out of range 1..5"):
        load_dataset("cub", root)


def test_label_disagreeing_with_folder(sample):
    root = sample("cub")
    lines = (root / "image_class_labels.txt").read_text().splitlines()
    lines[0] = "1 2"
    replace_file(root / "image_class_labels.txt", "\n".join(lines))
    with pytest.raises(DatasetError, match=r"images.txt: line 1: image in folder '001.Sample_Bird_1' but"):
        load_dataset("cub", root)


def test_image_without_split_flag(sample):
    root = sample("cub")
    lines = (root / "train_test_split.txt").read_text().splitlines()
    replace_file(root / "train_test_split.txt", "\n".join(lines[:-1]))
    with pytest.raises(DatasetError, match=r"train_test_split.txt: no line for image id 30 of images.txt"):
        load_dataset("cub", root)

