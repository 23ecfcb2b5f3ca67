import shutil

import numpy as np
import pytest
import scipy.io

from conftest import REFERENCE
from fgood_bench.datasets import load_dataset, synthetic
from fgood_bench.errors import DatasetError


def test_full_download_gives_official_counts(full_cars):
    index = load_dataset("stanford_cars", full_cars)
    assert index.num_classes == 196
    assert index.split_counts() == {"train": 8144, "test": 8041}
    assert index.classes[0] == "AM General Hummer SUV 2000"
    assert "Ram C/V Cargo Van Minivan 2012" in index.classes


def test_train_labels_match_the_devkit_submission_file(full_cars):
    truth = [int(x) - 1 for x in (REFERENCE / "stanford_cars" / "train_perfect_preds.txt").read_text().split()]
    train = load_dataset("stanford_cars", full_cars).split("train")
    assert train.column("label").to_pylist() == truth
    assert train.column("path")[0].as_py() == "cars_train/00001.jpg"
    assert train.column("class_name")[0].as_py() == "Audi TTS Coupe 2012"  # class 14 (1-based) in cars_train_annos.mat


def test_test_split_absent_without_labels(sample):
    root = sample("stanford_cars")
    (root / "cars_test_annos_withlabels.mat").unlink()
    index = load_dataset("stanford_cars", root)
    assert index.splits == ["train"]
    assert "cars_test_annos_withlabels.mat" in index.absent["test"]
    shutil.copy(root / "devkit" / "cars_test_annos.mat", root / "devkit" / "cars_test_annos_withlabels.mat")
    with pytest.raises(DatasetError, match=r"cars_test_annos_withlabels.mat: the annotations have no field 'class'"):
        load_dataset("stanford_cars", root)


def test_kaggle_nested_image_folders(sample):
    root = sample("stanford_cars")
    for folder in ("cars_train", "cars_test"):
        (root / folder).rename(root / "tmp")
        (root / folder).mkdir()
        (root / "tmp").rename(root / folder / folder)
    index = load_dataset("stanford_cars", root)
    assert index.split("test").column("path")[0].as_py() == "cars_test/cars_test/00001.jpg"


def test_all_in_one_distribution(tmp_path):
    root = tmp_path / "cars"
    root.mkdir()
    rows = [{"relative_im_path": f"car_ims/{i:06d}.jpg", "bbox_x1": np.uint8(1), "bbox_y1": np.uint8(1),
             "bbox_x2": np.uint8(9), "bbox_y2": np.uint8(9), "class": np.uint8(i % 2 + 1), "test": np.uint8(i > 3)}
            for i in range(1, 7)]
    scipy.io.savemat(root / "cars_annos.mat", {"annotations": synthetic._mat_struct(rows),
                                               "class_names": np.array([["Audi A5 Coupe 2012", "BMW M3 Coupe 2012"]], dtype=object)})
    index = load_dataset("stanford_cars", root)
    assert index.split_counts() == {"train": 3, "test": 3}
    assert index.split("train").to_pylist()[0]["path"] == "car_ims/000001.jpg"
    assert index.split("train").to_pylist()[0]["class_name"] == "BMW M3 Coupe 2012"


def test_kaggle_copy_without_devkit_is_one_clear_line(sample):
    """The Kaggle copy: cars_annos.mat and nested cars_train/, no devkit/ and no car_ims/."""
    root = sample("stanford_cars")
    rows = [{"relative_im_path": f"car_ims/{i:06d}.jpg", "class": np.uint8(1), "test": np.uint8(i == 2)} for i in (1, 2)]
    scipy.io.savemat(root / "cars_annos.mat", {"annotations": synthetic._mat_struct(rows),
                                               "class_names": np.array([["Audi A5 Coupe 2012", "BMW M3 Coupe 2012"]], dtype=object)})
    shutil.rmtree(root / "devkit")
    (root / "cars_train").rename(root / "tmp")
    (root / "cars_train").mkdir()
    (root / "tmp").rename(root / "cars_train" / "cars_train")
    with pytest.raises(DatasetError) as caught:
        load_dataset("stanford_cars", root)
    assert str(caught.value) == (f"{root / 'devkit' / 'cars_meta.mat'}: file is missing (cars_train/ found without "
                                 "car_ims/: add devkit/ from car_devkit.tgz and cars_test_annos_withlabels.mat) "
                                 "(see docs/datasets/stanford_cars.md)")
    (root / "car_ims").mkdir()  # an all-in-one download (images not yet extracted) is still read as such
    assert load_dataset("stanford_cars", root).split_counts() == {"train": 1, "test": 1}


def test_class_out_of_range(sample):
    root = sample("stanford_cars")
    annos = scipy.io.loadmat(root / "devkit" / "cars_train_annos.mat")["annotations"]
    annos[0, 2]["class"] = np.array([[197]], np.uint16)
    scipy.io.savemat(root / "devkit" / "cars_train_annos.mat", {"annotations": annos})
    with pytest.raises(DatasetError, match=r"cars_train_annos.mat: annotation 3: class 197 out of range 1..3"):
        load_dataset("stanford_cars", root)


def test_not_a_cars_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"not a Stanford Cars download: expected devkit/cars_meta.mat or cars_annos.mat"):
        load_dataset("stanford_cars", tmp_path)
