"""Writers of each dataset's *native* on-disk layout, filled with tiny generated images.

They serve three purposes: the quickstart (``fgood-bench inspect cub --sample``), the test
fixtures (fed with the real metadata files of the datasets), and the end-to-end demo. Each
``write_<dataset>`` takes the metadata to write and reproduces the official quirks (1-based ids,
BOM + CRLF lists, MATLAB structs); ``write_sample`` invents small metadata for any adapter.
"""

from __future__ import annotations

import io
import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import scipy.io
from PIL import Image

Rows = list[tuple[str, int]]


@lru_cache(maxsize=None)
def tiny_jpeg(label: int, size: int = 8, comment: str = "") -> bytes:
    """A small valid JPEG whose colour depends on ``label``; a ``comment`` makes its bytes unique
    (the pixels stay those of ``label``), as distinct photos are: split disjointness is checked by content."""
    rng = np.random.default_rng(label)
    pixels = (rng.integers(0, 256, 3) + rng.integers(0, 32, (size, size, 3))).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90, **({"comment": comment} if comment else {}))
    return buffer.getvalue()


_link_sources: dict[int, Path] | None = None


@contextmanager
def hardlinked_images():
    """Within this block, images of the same label are hard links of one file.

    Creating a link costs a directory entry, not a new file: about 50x faster on slow disks,
    which matters for full-size fixtures of tens of thousands of images. Such images must not be
    modified in place (unlink first), or all their links change.
    """
    global _link_sources
    _link_sources = {}
    try:
        yield
    finally:
        _link_sources = None


def write_image(path: Path, label: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    source = _link_sources.get(label) if _link_sources is not None else None
    if source is not None:
        try:
            os.link(source, path)
            return
        except OSError:  # another file system, or the source is gone: write a copy instead
            pass
    path.write_bytes(tiny_jpeg(label, comment="/".join(path.parts[-2:])))
    if _link_sources is not None:
        _link_sources[label] = path


def write_text(path: Path, lines: Iterable[str], newline: str = "\n", bom: bool = False, final_newline: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = newline.join(lines) + (newline if final_newline else "")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


def _mat_struct(rows: list[dict]) -> np.ndarray:
    """A MATLAB 1 x N struct array (as in the Stanford Cars devkit) from dicts with equal keys."""
    fields = list(rows[0])
    struct = np.zeros((1, len(rows)), dtype=[(name, "O") for name in fields])
    for i, row in enumerate(rows):
        struct[0, i] = tuple(row[name] for name in fields)
    return struct


def write_cub(root: Path, class_folders: list[str], images: list[tuple[str, int, int]]) -> Path:
    """``images``: (path under images/, class id 1-based, is_training 1/0) in image-id order."""
    root = Path(root) / "CUB_200_2011"
    write_text(root / "classes.txt", (f"{i} {name}" for i, name in enumerate(class_folders, 1)))
    write_text(root / "images.txt", (f"{i} {path}" for i, (path, _, _) in enumerate(images, 1)))
    write_text(root / "image_class_labels.txt", (f"{i} {label}" for i, (_, label, _) in enumerate(images, 1)))
    write_text(root / "train_test_split.txt", (f"{i} {flag}" for i, (_, _, flag) in enumerate(images, 1)))
    for path, label, _ in images:
        write_image(root / "images" / path, label)
    return root


def write_thudogs(root: Path, train: list[str], val: list[str], variant: str = "low-resolution") -> Path:
    """``train``/``val``: the lines of the official lists (``.//<folder>/<image>``), written with BOM + CRLF."""
    root = Path(root)
    for name, lines in (("train.lst", train), ("validation.lst", val)):
        write_text(root / "TrainAndValList" / name, lines, newline="\r\n", bom=True)
        for line in lines:
            folder, image = line[3:].split("/")
            write_image(root / variant / folder / image, int(folder.split("-")[1][1:]))
    return root


def write_flowers102(root: Path, labels: np.ndarray, trnid: np.ndarray, valid: np.ndarray, tstid: np.ndarray) -> Path:
    """``labels``: class (1..102) of image 1..N; the id arrays are 1-based image ids."""
    root = Path(root) / "flowers-102"
    root.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "imagelabels.mat", {"labels": np.asarray(labels, np.uint8).reshape(1, -1)})
    ids = {name: np.asarray(v, np.uint16).reshape(1, -1) for name, v in (("trnid", trnid), ("valid", valid), ("tstid", tstid))}
    scipy.io.savemat(root / "setid.mat", ids)
    for image_id, label in enumerate(np.asarray(labels).tolist(), 1):
        write_image(root / "jpg" / f"image_{image_id:05d}.jpg", label)
    return root


def write_stanford_cars(root: Path, class_names: list[str], train: Rows, test: Rows) -> Path:
    """Devkit layout; ``train``/``test``: (file name, class id 1-based)."""
    root = Path(root) / "stanford_cars"
    (root / "devkit").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "devkit" / "cars_meta.mat", {"class_names": np.array([class_names], dtype=object)})

    def annotations(rows: Rows, with_class: bool) -> np.ndarray:
        return _mat_struct([
            {"bbox_x1": np.uint8(1), "bbox_y1": np.uint8(2), "bbox_x2": np.uint16(300), "bbox_y2": np.uint16(200),
             **({"class": np.uint8(label)} if with_class else {}), "fname": name}
            for name, label in rows
        ])

    scipy.io.savemat(root / "devkit" / "cars_train_annos.mat", {"annotations": annotations(train, True)})
    scipy.io.savemat(root / "devkit" / "cars_test_annos.mat", {"annotations": annotations(test, False)})
    scipy.io.savemat(root / "cars_test_annos_withlabels.mat", {"annotations": annotations(test, True)})
    for folder, rows in (("cars_train", train), ("cars_test", test)):
        for name, label in rows:
            write_image(root / folder / name, label)
    return root


def write_fgvc_aircraft(root: Path, variants: list[str], splits: dict[str, Rows]) -> Path:
    """``splits``: split -> (7-digit image id, variant index). Families and manufacturers are
    invented from the variant names (the part before the first '-' or space, and its first letter)."""
    root = Path(root) / "fgvc-aircraft-2013b"
    family = {v: v.replace(" ", "-").split("-")[0] for v in variants}
    levels = {"variant": {v: v for v in variants}, "family": family, "manufacturer": {v: f"Maker {family[v][0]}" for v in variants}}
    for level, names in levels.items():
        classes = list(dict.fromkeys(names.values()))
        write_text(root / "data" / {"variant": "variants.txt", "family": "families.txt", "manufacturer": "manufacturers.txt"}[level], classes)
        for split, rows in splits.items():
            write_text(root / "data" / f"images_{level}_{split}.txt", (f"{image_id} {names[variants[label]]}" for image_id, label in rows))
    for split, rows in splits.items():
        write_text(root / "data" / f"images_{split}.txt", (image_id for image_id, _ in rows))
        for image_id, label in rows:
            write_image(root / "data" / "images" / f"{image_id}.jpg", label)
    return root


def write_places365(root: Path, categories: list[str], val: Rows, train: Rows | None = None) -> Path:
    """``val``: (file name, label); ``train``: (``/a/airfield/00000000.jpg``-style path, label)."""
    root = Path(root) / "places365"
    write_text(root / "categories_places365.txt", (f"{name} {i}" for i, name in enumerate(categories)), final_newline=False)
    write_text(root / "places365_val.txt", (f"{name} {label}" for name, label in val))
    for name, label in val:
        write_image(root / "val_256" / name, label)
    if train is not None:
        write_text(root / "places365_train_standard.txt", (f"{path} {label}" for path, label in train))
        for path, label in train:
            write_image(root / "data_256" / path.lstrip("/"), label)
    return root


def write_webvision(root: Path, synsets: list[tuple[str, str]], train: dict[str, Rows], val: Rows | None) -> Path:
    """``synsets``: (wnid, names) in file order; ``train``: source -> (path, label); ``val``: (file, label)."""
    root = Path(root) / "WebVision"
    write_text(root / "info" / "synsets.txt", (f"{wnid} {names}" for wnid, names in synsets))
    queries = sorted({(int(path.split("/")[1][1:]), label) for rows in train.values() for path, label in rows})
    write_text(root / "info" / "queries_synsets_map.txt", (f"{query} {label + 1}" for query, label in queries))
    for source, rows in train.items():
        write_text(root / "info" / f"train_filelist_{source}.txt", (f"{path} {label}" for path, label in rows))
        for path, label in rows:
            write_image(root / path, label)
    if val is not None:
        write_text(root / "info" / "val_filelist.txt", (f"{name} {label}" for name, label in val))
        for name, label in val:
            write_image(root / "val_images_256" / name, label)
    return root


def write_minc2500(root: Path, categories: list[str], partitions: dict[str, list[str]]) -> Path:
    """``partitions``: label-file stem (``train1``, ``validate1``, ...) -> ``images/<cat>/<file>`` lines."""
    root = Path(root) / "minc-2500"
    write_text(root / "categories.txt", categories)
    for stem, lines in partitions.items():
        write_text(root / "labels" / f"{stem}.txt", lines)
        for line in lines:
            write_image(root / line, categories.index(line.split("/")[1]))
    return root


def write_dtd(root: Path, partitions: dict[str, list[str]], stray_file: bool = True) -> Path:
    """``partitions``: label-file stem (``train1``, ...) -> ``<class>/<file>`` lines. Nested as torchvision does."""
    root = Path(root) / "dtd" / "dtd"
    for stem, lines in partitions.items():
        write_text(root / "labels" / f"{stem}.txt", lines)
    # the ten partitions list the same images: each is written once
    for line in dict.fromkeys(line for lines in partitions.values() for line in lines):
        write_image(root / "images" / line, sum(map(ord, line.split("/")[0])))
    waffled = root / "images" / "waffled"
    if stray_file and waffled.is_dir():  # the real archive ships this KDE metadata file (docs/datasets/dtd.md)
        write_text(waffled / ".directory", ["[Dolphin]"])
    return root


def write_imagenet(root: Path, train: dict[str, list[str]], val: dict[str, list[str]]) -> Path:
    """Class-folder layout; ``train``/``val``: wnid -> file names."""
    root = Path(root) / "imagenet"
    for split, folders in (("train", train), ("val", val)):
        for label, (wnid, names) in enumerate(sorted(folders.items())):
            (root / split / wnid).mkdir(parents=True, exist_ok=True)
            for name in names:
                write_image(root / split / wnid / name, label)
    return root


def write_imagefolder(root: Path, classes: dict[str, list[str]]) -> Path:
    root = Path(root) / "my_ood_set"
    for label, (name, files) in enumerate(classes.items()):
        for file in files:
            write_image(root / name / file, label)
    return root


# -- small invented samples, one per adapter -------------------------------------------------


def _sample_cub(root: Path) -> Path:
    folders = [f"{i:03d}.Sample_Bird_{i}" for i in range(1, 6)]
    images = [(f"{folder}/Sample_Bird_{c}_{k:04d}_{c * 100 + k}.jpg", c, int(k % 3 != 0))
              for c, folder in enumerate(folders, 1) for k in range(1, 7)]
    return write_cub(root, folders, images)


def _sample_thudogs(root: Path) -> Path:
    breeds = ["Shiba_Dog", "Fila Braziliero", "pug"]
    folders = [f"6-n{i:06d}-{breed}" for i, breed in enumerate(breeds, 1)]
    train = [f".//{folder}/n{i}{k:05d}.jpeg" for i, folder in enumerate(folders, 1) for k in range(4)]
    val = [f".//{folder}/n{i}{k:05d}.jpg" for i, folder in enumerate(folders, 1) for k in range(4, 6)]
    return write_thudogs(root, train, val)


def _sample_flowers102(root: Path) -> Path:
    labels = np.repeat(np.arange(1, 103), 3)
    ids = np.arange(1, labels.size + 1).reshape(102, 3)
    return write_flowers102(root, labels, ids[:, 0], ids[:, 1], ids[:, 2])


def _sample_stanford_cars(root: Path) -> Path:
    names = ["AM General Hummer SUV 2000", "Ram C/V Cargo Van Minivan 2012", "smart fortwo Convertible 2012"]
    train = [(f"{i:05d}.jpg", i % 3 + 1) for i in range(1, 10)]
    test = [(f"{i:05d}.jpg", i % 3 + 1) for i in range(1, 7)]
    return write_stanford_cars(root, names, train, test)


def _sample_fgvc_aircraft(root: Path) -> Path:
    variants = ["707-320", "BAE 146-200", "F/A-18"]
    splits = {split: [(f"{offset + i:07d}", i % 3) for i in range(6)] for offset, split in ((10, "train"), (30, "val"), (50, "test"))}
    return write_fgvc_aircraft(root, variants, splits)


def _sample_places365(root: Path) -> Path:
    categories = ["/a/airfield", "/a/arena/hockey", "/z/zen_garden"]
    return write_places365(root, categories, [(f"Places365_val_{i:08d}.jpg", i % 3) for i in range(1, 10)])


def _sample_webvision(root: Path) -> Path:
    """All 1,000 ImageNet-1k concepts listed (as WebVision 1.0 does), images of three: tench,
    brambling (a bird), Chihuahua (a dog)."""
    from fgood_bench.datasets.imagenet import imagenet_synsets

    synsets = list(imagenet_synsets().items())
    labels = [[wnid for wnid, _ in synsets].index(wnid) for wnid in ("n01440764", "n01530575", "n02085620")]
    train = {source: [(f"{source}/q{q:04d}/{source}_{q}_{k}.jpg", labels[q - 1]) for q in (1, 2, 3) for k in range(3)]
             for source in ("google", "flickr")}
    return write_webvision(root, synsets, train, [(f"val{i:06d}.jpg", labels[i % 3]) for i in range(1, 7)])


def _sample_minc2500(root: Path) -> Path:
    categories = ["brick", "polishedstone", "wood"]
    partitions = {f"{stem}1": [f"images/{c}/{c}_{offset + k:06d}.jpg" for c in categories for k in range(count)]
                  for stem, offset, count in (("train", 0, 4), ("validate", 100, 1), ("test", 200, 2))}
    return write_minc2500(root, categories, partitions)


def _sample_dtd(root: Path) -> Path:
    classes = ["banded", "blotchy", "waffled"]
    return write_dtd(root, {f"{split}1": [f"{c}/{c}_{offset + k:04d}.jpg" for c in classes for k in range(2)]
                            for split, offset in (("train", 1), ("val", 11), ("test", 21))})


def _sample_imagenet(root: Path) -> Path:
    from fgood_bench.datasets.imagenet import imagenet_synsets

    wnids = list(imagenet_synsets())
    return write_imagenet(root, {w: [f"{w}_{k}.JPEG" for k in range(2)] for w in wnids},
                          {w: [f"ILSVRC2012_val_{i + 1:08d}.JPEG"] for i, w in enumerate(wnids)})


def _sample_imagefolder(root: Path) -> Path:
    return write_imagefolder(root, {"lsun": [f"{k}.jpg" for k in range(4)], "textures": [f"{k}.png.jpg" for k in range(3)]})


SAMPLES: dict[str, Callable[[Path], Path]] = {
    "cub": _sample_cub, "thudogs": _sample_thudogs, "flowers102": _sample_flowers102,
    "stanford_cars": _sample_stanford_cars, "fgvc_aircraft": _sample_fgvc_aircraft, "places365": _sample_places365,
    "webvision": _sample_webvision, "minc2500": _sample_minc2500, "dtd": _sample_dtd, "imagenet": _sample_imagenet,
    "imagefolder": _sample_imagefolder,
}


def write_sample(name: str, root: str | Path) -> Path:
    """Write a small invented copy of dataset ``name`` in its native layout under ``root``.

    Returns the folder to pass as ``--root`` (the archive's top folder, as a user unpacks it).
    """
    return SAMPLES[name](Path(root))
