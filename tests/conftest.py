"""Fixtures: dataset downloads in their exact native layouts, built from the real metadata files.

``tests/data/reference-meta/`` holds byte-for-byte copies of official metadata (CUB lists,
Tsinghua Dogs ``.lst`` files with their BOM and CRLF, Places365 and MINC categories, ImageNet
synsets, Stanford Cars train labels, Flowers-102 ``imagelabels.mat`` and ``setid.mat``) and one
derived list, the Stanford Cars class names extracted from the binary ``cars_meta.mat``;
provenance and checksums in its SOURCES.md. Full-size layouts copy those files verbatim and add
tiny generated images (hard links, see ``hardlinked_images``); where no official file could be
obtained, metadata is generated with the official structure and counts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fgood_bench.cli import main
from fgood_bench.datasets import load_dataset, synthetic
from fgood_bench.datasets.imagenet import imagenet_synsets

REFERENCE = Path(__file__).parent / "data" / "reference-meta"


def pytest_runtest_setup(item):
    """``wordnet`` tests skip where WordNet 3.0 is absent, saying how to get it; CI (which sets
    FGOOD_BENCH_REQUIRE_WORDNET) installs it, so there a missing WordNet fails them instead."""
    if item.get_closest_marker("wordnet") is None:
        return
    from fgood_bench.outliers.wordnet import INSTALL_HINT, wordnet_available

    if not wordnet_available():
        if os.environ.get("FGOOD_BENCH_REQUIRE_WORDNET"):
            pytest.fail(f"FGOOD_BENCH_REQUIRE_WORDNET is set but {INSTALL_HINT}")
        pytest.skip(f"needs WordNet 3.0 data. {INSTALL_HINT}")

# Progress lines (fgood_bench.progress) come every 30 s of a command's run, which depends on the
# machine's speed: off in tests, so that what a command prints is the same everywhere (test_ux.py
# turns them on where it checks them).
os.environ.setdefault("FGOOD_BENCH_PROGRESS_SECONDS", "1e9")

DTD_CLASSES = (
    "banded blotchy braided bubbly bumpy chequered cobwebbed cracked crosshatched crystalline dotted fibrous "
    "flecked freckled frilly gauzy grid grooved honeycombed interlaced knitted lacelike lined marbled matted "
    "meshed paisley perforated pitted pleated polka-dotted porous potholed scaly smeared spiralled sprinkled "
    "stained stratified striped studded swirly veined waffled woven wrinkled zigzagged"
).split()


def run_cli(*argv: str, capsys) -> tuple[int, str, str]:
    """Run ``fgood-bench`` in-process; returns (exit status, stdout, stderr)."""
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_cli_process(*argv: str) -> subprocess.CompletedProcess:
    """Run ``fgood-bench`` as a separate process, as a user does."""
    return subprocess.run([sys.executable, "-m", "fgood_bench", *map(str, argv)], capture_output=True, text=True)


def replace_file(path: Path, content: bytes | str) -> None:
    """Overwrite a fixture file without touching its hard links."""
    path.unlink()
    path.write_bytes(content.encode() if isinstance(content, str) else content)


@pytest.fixture(scope="session")
def full_cub(tmp_path_factory) -> Path:
    """CUB-200-2011 with the official lists and all 11,788 images."""
    root = tmp_path_factory.mktemp("cub") / "CUB_200_2011"
    root.mkdir()
    for name in ("classes.txt", "images.txt", "image_class_labels.txt", "train_test_split.txt"):
        shutil.copyfile(REFERENCE / "cub200_2011" / name, root / name)
    with synthetic.hardlinked_images():
        for line in (root / "images.txt").read_text().splitlines():
            relpath = line.split()[1]
            synthetic.write_image(root / "images" / relpath, int(relpath[:3]))
    return root


@pytest.fixture(scope="session")
def full_thudogs(tmp_path_factory) -> Path:
    """Tsinghua Dogs, low-resolution variant, with the official split lists and all 70,428 images."""
    root = tmp_path_factory.mktemp("thudogs")
    lists = root / "TrainAndValList"
    lists.mkdir()
    with synthetic.hardlinked_images():
        for name in ("train.lst", "validation.lst"):
            shutil.copyfile(REFERENCE / "tsinghua_dogs" / name, lists / name)
            for line in (lists / name).read_text(encoding="utf-8-sig").splitlines():
                folder, image = line[3:].split("/")
                synthetic.write_image(root / "low-resolution" / folder / image, int(folder.split("-")[1][1:]))
    return root


@pytest.fixture(scope="session")
def full_flowers(tmp_path_factory) -> Path:
    """Flowers-102 in torchvision's ``flowers-102/``: the official imagelabels.mat and setid.mat
    (copied byte for byte) and the 8,189 images they list, as tiny hard-linked JPEGs."""
    from scipy.io import loadmat

    root = tmp_path_factory.mktemp("flowers") / "flowers-102"
    root.mkdir()
    for name in ("imagelabels.mat", "setid.mat"):
        shutil.copyfile(REFERENCE / "flowers102" / name, root / name)
    labels = loadmat(root / "imagelabels.mat")["labels"].ravel()
    with synthetic.hardlinked_images():
        for number, label in enumerate(labels.tolist(), 1):
            synthetic.write_image(root / "jpg" / f"image_{number:05d}.jpg", label)
    return root


@pytest.fixture(scope="session")
def full_cars(tmp_path_factory) -> Path:
    """Stanford Cars devkit layout: real class names and real train labels, 8,144 + 8,041 images."""
    names = (REFERENCE / "stanford_cars" / "stanford_cars_class_names_from_cars_meta.txt").read_text().splitlines()
    train_labels = [int(x) for x in (REFERENCE / "stanford_cars" / "train_perfect_preds.txt").read_text().split()]
    train = [(f"{i:05d}.jpg", label) for i, label in enumerate(train_labels, 1)]
    test = [(f"{i:05d}.jpg", (i * 5) % 196 + 1) for i in range(1, 8042)]  # every class tested, as in the real split
    with synthetic.hardlinked_images():
        return synthetic.write_stanford_cars(tmp_path_factory.mktemp("cars"), names, train, test)


@pytest.fixture(scope="session")
def full_places_val(tmp_path_factory) -> Path:
    """Places365 as OOD users have it: the official categories file, val list and val_256 only."""
    root = tmp_path_factory.mktemp("places")
    categories = [line.split()[0] for line in (REFERENCE / "places365" / "categories_places365.txt").read_text().splitlines()]
    val = [(f"Places365_val_{i:08d}.jpg", (i * 31) % 365) for i in range(1, 36501)]
    with synthetic.hardlinked_images():
        root = synthetic.write_places365(root, categories, val)
    shutil.copyfile(REFERENCE / "places365" / "categories_places365.txt", root / "categories_places365.txt")
    return root


@pytest.fixture(scope="session")
def full_imagenet_val(tmp_path_factory) -> Path:
    """ImageNet-1k class-folder layout: the 50,000 val images and two train images per class."""
    wnids = list(imagenet_synsets())
    train = {wnid: [f"{wnid}_{k}.JPEG" for k in (1, 2)] for wnid in wnids}
    val = {wnid: [f"ILSVRC2012_val_{c * 50 + k + 1:08d}.JPEG" for k in range(50)] for c, wnid in enumerate(wnids)}
    with synthetic.hardlinked_images():
        return synthetic.write_imagenet(tmp_path_factory.mktemp("imagenet"), train, val)


@pytest.fixture
def sample(tmp_path):
    """``sample(name)``: a small invented copy of dataset ``name`` in its native layout."""
    return lambda name: synthetic.write_sample(name, tmp_path)


@pytest.fixture(scope="session")
def dozen_birds(tmp_path_factory) -> Path:
    """A CUB-200-2011 layout with 12 classes, 6 train + 4 test images each."""
    folders = [f"{c:03d}.Bird_{c}" for c in range(1, 13)]
    images = [(f"{folder}/Bird_{c}_{k:04d}.jpg", c, int(k < 6)) for c, folder in enumerate(folders, 1) for k in range(10)]
    return synthetic.write_cub(tmp_path_factory.mktemp("birds"), folders, images)


def write_predictions(path: Path, root: Path, confidence: dict[int, float], shuffle: bool = True) -> list[str]:
    """Logits for the test split: class c predicted correctly with softmax mass ``confidence[c]``."""
    test = load_dataset("cub", root).split("test")
    paths, labels = test.column("path").to_pylist(), test.column("label").to_numpy()
    num_classes = 12
    logits = np.empty((len(paths), num_classes))
    for row, label in enumerate(labels):
        p = np.full(num_classes, (1 - confidence[label]) / (num_classes - 1))
        p[label] = confidence[label]
        logits[row] = np.log(p)
    order = np.random.default_rng(1).permutation(len(paths)) if shuffle else np.arange(len(paths))
    np.savez(path, paths=np.array(paths)[order], logits=logits[order].astype(np.float32))
    return paths


@pytest.fixture(scope="session")
def bird_benchmark(dozen_birds, tmp_path_factory) -> dict:
    """``base/out/bird`` (K=8 of the dozen birds, from a predictions file) and ``base/out/places365``
    (a Places365 OOD set of the generated ``places`` folder), shared by the training and evaluation tests."""
    base = tmp_path_factory.mktemp("bird-benchmark")
    write_predictions(base / "preds.npz", dozen_birds, {c: 0.4 + c / 40 for c in range(12)})
    assert main(["build-splits", "bird", "--root", str(dozen_birds), "--out", str(base / "out"), "--num-id", "8",
                 "--predictions", str(base / "preds.npz")]) == 0
    places = synthetic.write_sample("places365", base / "places")
    assert main(["build-ood-set", "places365", "--root", str(places), "--out", str(base / "out")]) == 0
    return {"base": base, "places": places}


def fake_run(folder: Path, method: str, seed: int, interpolation: bool = True) -> Path:
    """An evaluate output folder with the files plot reads (scores, results, interpolation data)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    sets = {"id": rng.beta(8, 1, 60), "holdout": rng.beta(4, 2, 30), "places": rng.beta(2, 3, 30)}
    pq.write_table(pa.table({"path": [f"{k}_{i}" for k, v in sets.items() for i in range(len(v))],
                             "set": [k for k, v in sets.items() for _ in v], "label": [0] * 120,
                             "msp": np.concatenate(list(sets.values()))}), folder / "scores.parquet")
    (folder / "results.json").write_text(json.dumps({"benchmark": {"name": "dog"},
                                                     "model": {"method": method, "arch": "resnet50", "checkpoint": "c.pt"}}))
    if interpolation:
        from fgood_bench.evaluation.plots import write_interpolation

        write_interpolation({lam: rng.beta(1 + 5 * lam, 2, 40) for lam in (1.0, 0.5, 0.6, 0.7)}, "places",
                            folder / "interpolation.parquet")
    return folder
