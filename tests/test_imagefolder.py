import pytest

from fgood_bench.datasets import load_dataset, synthetic
from fgood_bench.errors import DatasetError


def test_class_tree_sorted_and_recursive(tmp_path):
    root = tmp_path / "ood"
    for rel, label in (("b_class/x.jpg", 0), ("a_class/deep/y.PNG", 1), ("a_class/z.jpeg", 1), ("a_class/.hidden.jpg", 0)):
        synthetic.write_image(root / rel, label)
    (root / "a_class" / "notes.txt").write_text("not an image")
    index = load_dataset("imagefolder", root)
    assert index.classes == ("a_class", "b_class")
    assert index.samples.select(["path", "label", "split"]).to_pylist() == [
        {"path": "a_class/z.jpeg", "label": 0, "split": "all"},
        {"path": "a_class/deep/y.PNG", "label": 0, "split": "all"},
        {"path": "b_class/x.jpg", "label": 1, "split": "all"},
    ]


def test_flat_folder_is_one_class(tmp_path):
    root = tmp_path / "LSUN_resize"
    for k in range(3):
        synthetic.write_image(root / f"{k}.jpg", k)
    index = load_dataset("imagefolder", root)
    assert index.classes == ("LSUN_resize",) and index.split_counts() == {"all": 3}


def test_mixed_and_empty_folders(tmp_path):
    synthetic.write_image(tmp_path / "mixed" / "a.jpg", 0)
    synthetic.write_image(tmp_path / "mixed" / "cls" / "b.jpg", 0)
    with pytest.raises(DatasetError, match=r"mixed: holds both images \(a.jpg, ...\) and sub-folders \(cls, ...\)"):
        load_dataset("imagefolder", tmp_path / "mixed")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"empty/cls: no image files found"):
        load_dataset("imagefolder", tmp_path / "empty")
    with pytest.raises(DatasetError, match=r"nowhere: no such folder"):
        load_dataset("imagefolder", tmp_path / "nowhere")
