import numpy as np
import pytest
import scipy.io

from conftest import REFERENCE
from fgood_bench.datasets import load_dataset, synthetic
from fgood_bench.datasets.flowers102 import flowers102_class_names
from fgood_bench.errors import DatasetError


def test_full_download_gives_official_counts(full_flowers):
    index = load_dataset("flowers102", full_flowers)
    assert index.num_classes == 102
    assert index.split_counts() == {"train": 1020, "val": 1020, "test": 6149}
    assert index.classes[0] == "pink primrose" and index.classes[-1] == "blackberry lily"
    for split in ("train", "val"):  # 10 images of every class in train and in val
        assert np.bincount(index.split(split).column("label").to_numpy(), minlength=102).tolist() == [10] * 102


def test_labels_are_one_based_in_the_mat_file(full_flowers):
    index = load_dataset("flowers102", full_flowers)
    train = index.split("train").to_pylist()
    # rows keep the (unsorted) order of trnid in setid.mat
    assert [row["path"] for row in train[:3]] == ["jpg/image_06765.jpg", "jpg/image_06755.jpg", "jpg/image_06768.jpg"]
    # image_00001.jpg is labelled 77 in imagelabels.mat: label 76, torchvision's 'passion flower'
    first = next(row for split in ("train", "val", "test") for row in index.split(split).to_pylist()
                 if row["path"] == "jpg/image_00001.jpg")
    assert (first["label"], first["class_name"], first["split"]) == (76, "passion flower", "test")
    # every row: the label of its image in imagelabels.mat (read here without squeeze_me) minus one
    labels = scipy.io.loadmat(REFERENCE / "flowers102" / "imagelabels.mat")["labels"][0].astype(int)
    ids = scipy.io.loadmat(REFERENCE / "flowers102" / "setid.mat")
    for split, variable in (("train", "trnid"), ("val", "valid"), ("test", "tstid")):
        rows = index.split(split)
        assert rows.column("path").to_pylist() == [f"jpg/image_{i:05d}.jpg" for i in ids[variable][0]]
        assert rows.column("label").to_pylist() == (labels[ids[variable][0].astype(int) - 1] - 1).tolist()


def test_root_may_be_the_torchvision_parent(full_flowers):
    assert load_dataset("flowers102", full_flowers.parent).root == full_flowers


def test_class_names_are_torchvision_list():
    names = flowers102_class_names()
    assert len(names) == len(set(names)) == 102
    assert "pink-yellow dahlia?" in names


def test_label_out_of_range(sample):
    root = sample("flowers102")
    labels = np.repeat(np.arange(1, 103), 3).astype(np.uint8)
    labels[5] = 103
    scipy.io.savemat(root / "imagelabels.mat", {"labels": labels.reshape(1, -1)})
    with pytest.raises(DatasetError, match=r"imagelabels.mat: labels\[5\] = 103 out of range 1..102"):
        load_dataset("flowers102", root)


def test_image_id_out_of_range(sample):
    root = sample("flowers102")
    ids = scipy.io.loadmat(root / "setid.mat")
    ids["tstid"][0, 0] = 0
    scipy.io.savemat(root / "setid.mat", {k: ids[k] for k in ("trnid", "valid", "tstid")})
    with pytest.raises(DatasetError, match=r"setid.mat: tstid\[0\] = 0 is not an image id 1..306"):
        load_dataset("flowers102", root)


def test_missing_variable_and_damaged_file(sample):
    root = sample("flowers102")
    scipy.io.savemat(root / "setid.mat", {"trnid": np.array([[1]], np.uint16)})
    with pytest.raises(DatasetError, match=r"setid.mat: has no variable 'valid'"):
        load_dataset("flowers102", root)
    (root / "setid.mat").unlink()
    (root / "imagelabels.mat").write_bytes(b"not a mat file")
    with pytest.raises(DatasetError, match=r"setid.mat: file is missing"):
        load_dataset("flowers102", root)
    root = synthetic.write_sample("flowers102", root.parent / "again")
    (root / "imagelabels.mat").write_bytes(b"not a mat file")
    with pytest.raises(DatasetError, match=r"imagelabels.mat: not a readable MATLAB file"):
        load_dataset("flowers102", root)


def test_not_a_flowers_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"not an Oxford Flowers-102 download: expected imagelabels.mat or setid.mat"):
        load_dataset("flowers102", tmp_path)
