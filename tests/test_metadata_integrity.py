"""Duplicated and cross-split rows in official metadata are refused in one line naming the file and both
entries (fgood_bench/datasets/integrity.py), in every adapter; split files and ``verify`` refuse a row twice.

Each fault is planted in a small native layout (fgood_bench.datasets.synthetic); ``inspect`` must exit 2
with one line naming the metadata file and both line numbers (or .mat indices), and ``build-splits``
must refuse the same download.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil

import numpy as np
import pytest
import scipy.io

from conftest import run_cli
from fgood_bench.datasets import synthetic
from fgood_bench.errors import FgoodError
from fgood_bench.manifests.files import split_file_bytes
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.manifests.verify import check_disjoint


def lines_of(path):
    return path.read_text(encoding="utf-8-sig").splitlines()


def write_lines(path, lines, crlf=False, bom=False):
    synthetic.write_text(path, lines, newline="\r\n" if crlf else "\n", bom=bom)


def refused(capsys, dataset, root, *needles, options=()):
    """``inspect`` exits 2 with one line holding every needle; ``build-splits`` refuses too."""
    status, out, err = run_cli("inspect", dataset, "--root", root, *options, capsys=capsys)
    assert status == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert re.search(needle, err), (needle, err)
    out_dir = root.parent / "bench-out"
    status, _, err2 = run_cli("build-splits", "--dataset", dataset, "--num-id", "2", "--root", root, *options,
                              "--out", out_dir, "--predictions", root.parent / "none.npz", capsys=capsys)
    assert status == 2 and err2.strip() == err.strip(), err2
    assert not (out_dir / dataset / "manifest.json").exists()
    return err


# -- a path twice in one split -------------------------------------------------------------------


def test_cub_image_listed_twice_in_images_txt(tmp_path, capsys):
    root = synthetic.write_sample("cub", tmp_path)
    images = lines_of(root / "images.txt")
    train = [line.split()[0] for line in lines_of(root / "train_test_split.txt") if line.endswith(" 1")]
    a, b = int(train[0]), int(train[1])
    images[b - 1] = f"{b} {images[a - 1].split()[1]}"  # image id b names image a's file, same class, same split
    write_lines(root / "images.txt", images)
    refused(capsys, "cub", root, rf"images\.txt: lines {a} and {b} both list images/\S+: one image twice in split train")


def test_places365_val_image_twice_under_two_labels(tmp_path, capsys):
    root = synthetic.write_sample("places365", tmp_path)
    val = lines_of(root / "places365_val.txt")
    val[4] = f"{val[0].split()[0]} 2"  # line 1 says class 1
    write_lines(root / "places365_val.txt", val)
    refused(capsys, "places365", root, r"places365_val\.txt: lines 1 and 5 both list val_256/Places365_val_00000001\.jpg",
            "twice in split val, under two classes, '/a/arena/hockey' and '/z/zen_garden'")


def test_stanford_cars_annotation_twice(tmp_path, capsys):
    root = synthetic.write_sample("stanford_cars", tmp_path)
    annos = scipy.io.loadmat(root / "devkit" / "cars_train_annos.mat")["annotations"]
    annos[0, 4]["fname"] = annos[0, 1]["fname"]
    annos[0, 4]["class"] = annos[0, 1]["class"]
    scipy.io.savemat(root / "devkit" / "cars_train_annos.mat", {"annotations": annos})
    refused(capsys, "stanford_cars", root, r"cars_train_annos\.mat: annotation 2 and annotation 5 both list "
            r"cars_train/00002\.jpg: one image twice in split train")


def test_aircraft_id_twice_in_a_split(tmp_path, capsys):
    root = synthetic.write_sample("fgvc_aircraft", tmp_path)
    train = lines_of(root / "data" / "images_variant_train.txt")
    train.append(train[2])
    write_lines(root / "data" / "images_variant_train.txt", train)
    refused(capsys, "fgvc_aircraft", root, r"images_variant_train\.txt: lines 3 and 7 both list data/images/0000012\.jpg")


# -- a path in two splits --------------------------------------------------------------------------


def test_thudogs_image_in_train_and_validation_lists(tmp_path, capsys):
    root = synthetic.write_sample("thudogs", tmp_path)
    lists = root / "TrainAndValList"
    train, val = lines_of(lists / "train.lst"), lines_of(lists / "validation.lst")
    write_lines(lists / "validation.lst", [*val, train[5]], crlf=True, bom=True)
    refused(capsys, "thudogs", root, rf"validation\.lst: line {len(val) + 1} and TrainAndValList/train\.lst line 6 both "
            r"list low-resolution/6-n000002-Fila Braziliero/n200001\.jpeg: one image in two splits, train and val")


def test_flowers_setid_id_in_two_splits(tmp_path, capsys):
    root = synthetic.write_sample("flowers102", tmp_path)
    ids = scipy.io.loadmat(root / "setid.mat")
    ids["tstid"][0, 7] = ids["trnid"][0, 3]
    scipy.io.savemat(root / "setid.mat", {k: ids[k] for k in ("trnid", "valid", "tstid")})
    refused(capsys, "flowers102", root, r"setid\.mat: trnid\[3\] and tstid\[7\] both list jpg/image_00010\.jpg: "
            "one image in two splits, train and test")


def test_aircraft_train_image_in_test_under_another_class(tmp_path, capsys):
    root = synthetic.write_sample("fgvc_aircraft", tmp_path)
    train = lines_of(root / "data" / "images_variant_train.txt")
    image_id, variant = train[0].split(" ", 1)
    other = next(line.split(" ", 1)[1] for line in train if line.split(" ", 1)[1] != variant)
    test = lines_of(root / "data" / "images_variant_test.txt")
    write_lines(root / "data" / "images_variant_test.txt", [*test, f"{image_id} {other}"])
    refused(capsys, "fgvc_aircraft", root, r"images_variant_test\.txt: line 7 and data/images_variant_train\.txt line 1 "
            rf"both list data/images/{image_id}\.jpg: one image in two splits, train and test, under two classes")


@pytest.mark.parametrize("dataset, files", [
    ("minc2500", ("labels/train1.txt", "labels/test1.txt")),
    ("dtd", ("labels/train1.txt", "labels/val1.txt")),
])
def test_label_files_share_an_image(dataset, files, tmp_path, capsys):
    root = synthetic.write_sample(dataset, tmp_path)
    first, second = (lines_of(root / f) for f in files)
    write_lines(root / files[1], [*second, first[1]])
    refused(capsys, dataset, root, rf"{files[1]}: line {len(second) + 1} and {files[0]} line 2 both list \S+: "
            "one image in two splits")


def test_imagenet_kaggle_csv_gives_an_image_two_wnids(tmp_path, capsys):
    root = tmp_path / "imagenet"
    val = root / "ILSVRC" / "Data" / "CLS-LOC" / "val"
    rows = [("ILSVRC2012_val_00000001", "n01440764"), ("ILSVRC2012_val_00000002", "n01443537"),
            ("ILSVRC2012_val_00000001", "n01484850")]
    for image, _ in rows:
        synthetic.write_image(val / f"{image}.JPEG", 1)
    with (root / "LOC_val_solution.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([("ImageId", "PredictionString"), *((i, f"{w} 1 2 3 4") for i, w in rows)])
    refused(capsys, "imagenet", root, r"LOC_val_solution\.csv: lines 2 and 4 both label ILSVRC2012_val_00000001 "
            r"\(labelled n01440764 and n01484850\)")


# -- class names -------------------------------------------------------------------------------------


def test_places365_two_categories_with_one_name(tmp_path, capsys):
    root = synthetic.write_sample("places365", tmp_path)
    write_lines(root / "categories_places365.txt", ["/a/airfield 0", "/a/arena/hockey 1", "/a/airfield 2"])
    refused(capsys, "places365", root, r"categories_places365\.txt: lines 1 and 3 both name the class '/a/airfield'")


@pytest.mark.parametrize("dataset, relpath, edit, needle", [
    ("fgvc_aircraft", "data/variants.txt", lambda lines: [*lines, lines[0]], r"variants\.txt: lines 1 and 4 both name the class '707-320'"),
    ("minc2500", "categories.txt", lambda lines: [lines[0], lines[0], lines[2]], r"categories\.txt: lines 1 and 2 both name the class 'brick'"),
    ("cub", "classes.txt", lambda lines: [*lines[:2], "3 003.Sample_Bird_1", *lines[3:]], r"classes\.txt: lines 1 and 3 both name the class"),
])
def test_duplicate_class_names(dataset, relpath, edit, needle, tmp_path, capsys):
    root = synthetic.write_sample(dataset, tmp_path)
    write_lines(root / relpath, edit(lines_of(root / relpath)))
    refused(capsys, dataset, root, needle, "class names must be unique")


def test_tab_in_a_class_name_is_reported_against_the_class(tmp_path, capsys):
    root = synthetic.write_sample("fgvc_aircraft", tmp_path)
    data = root / "data"
    write_lines(data / "variants.txt", [line.replace("F/A-18", "F/A\t18") for line in lines_of(data / "variants.txt")])
    for split in ("train", "val", "test"):
        relpath = data / f"images_variant_{split}.txt"
        write_lines(relpath, [line.replace("F/A-18", "F/A\t18") for line in lines_of(relpath)])
    refused(capsys, "fgvc_aircraft", root, r"data/variants\.txt: line 3: class name 'F/A\\t18' holds a tab")
    with pytest.raises(FgoodError, match=r"^class name 'a\\tb': holds a tab"):
        split_file_bytes([("images/x.jpg", 0, "a\tb")])


# -- .mat shapes, folders in place of files ------------------------------------------------------------


def test_flowers_labels_of_the_wrong_shape(tmp_path, capsys):
    root = synthetic.write_sample("flowers102", tmp_path)
    labels = scipy.io.loadmat(root / "imagelabels.mat")["labels"]
    scipy.io.savemat(root / "imagelabels.mat", {"labels": np.vstack([labels, labels])})
    refused(capsys, "flowers102", root, r"imagelabels\.mat: variable 'labels' must be a 1 x N vector, got shape 2 x 306")


def test_stanford_cars_class_field_that_is_not_one_integer(tmp_path, capsys):
    root = synthetic.write_sample("stanford_cars", tmp_path)
    annos = scipy.io.loadmat(root / "devkit" / "cars_train_annos.mat")["annotations"]
    annos[0, 2]["class"] = np.array([[1, 2]], np.uint8)
    scipy.io.savemat(root / "devkit" / "cars_train_annos.mat", {"annotations": annos})
    refused(capsys, "stanford_cars", root, r"cars_train_annos\.mat: annotations\(3\)\.class must be one integer, got uint8 of shape 2")


@pytest.mark.parametrize("dataset, relpath", [
    ("flowers102", "setid.mat"),
    ("fgvc_aircraft", "data/images_variant_test.txt"),  # was taken for an absent test split
])
def test_folder_in_place_of_a_metadata_file(dataset, relpath, tmp_path, capsys):
    root = synthetic.write_sample(dataset, tmp_path)
    (root / relpath).unlink()
    (root / relpath).mkdir()
    refused(capsys, dataset, root, rf"{re.escape(relpath)}: a folder where a file is expected")


# -- manifests ---------------------------------------------------------------------------------------


def test_split_file_refuses_an_image_twice():
    with pytest.raises(FgoodError, match=r"^images/a\.jpg: on lines 2 and 4 of one split file"):
        split_file_bytes([("images/a.jpg", 0, "A"), ("images/b.jpg", 1, "B"), ("images/a.jpg", 0, "A")])


def test_verify_refuses_a_benchmark_whose_id_train_has_a_row_twice(bird_benchmark, dozen_birds, tmp_path, capsys):
    bench = tmp_path / "bird"
    shutil.copytree(bird_benchmark["base"] / "out" / "bird", bench)
    rows = (bench / "splits" / "id_train.txt").read_bytes().splitlines(keepends=True)
    content = b"".join([*rows, rows[3]])
    (bench / "splits" / "id_train.txt").write_bytes(content)
    manifest = json.loads((bench / "manifest.json").read_text())
    manifest["splits"]["id_train"].update(sha256=hashlib.sha256(content).hexdigest(), count=len(rows))
    (bench / "manifest.json").write_text(json.dumps(manifest))
    status, out, _ = run_cli("verify", bench, "--root", dozen_birds, capsys=capsys)
    assert status == 1 and "OK" not in out
    line = rf"splits/id_train\.txt: lines 4 and {len(rows) + 1} both list images/\S+: one image twice in split id_train"
    assert re.search(line, out), out
    with pytest.raises(FgoodError, match=line):
        check_disjoint(Manifest.load(bench))
