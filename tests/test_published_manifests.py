"""Every manifest committed under manifests/ is valid: it fits the schema, its split files match
their sha256, and its class names are the adapters' (read from the official metadata files in
tests/data/reference-meta), so that a user's `verify` can only fail because of their download.

The checker itself is tested on a freshly published benchmark, outlier set and OOD set, whole and
broken, so that it cannot pass vacuously while manifests/ holds only inet/ and exclusions/.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import DTD_CLASSES, REFERENCE
from fgood_bench.datasets import get_adapter, load_dataset, synthetic
from fgood_bench.datasets.flowers102 import flowers102_class_names
from fgood_bench.datasets.imagenet import imagenet_synsets
from fgood_bench.errors import FgoodError
from fgood_bench.manifests.files import sha256_bytes
from fgood_bench.manifests.manifest import Manifest

MANIFESTS = Path(__file__).parents[1] / "manifests"
PUBLISHED = sorted(p.parent for p in MANIFESTS.rglob("manifest.json"))

# Official metadata files from which each adapter reads its class names: dataset -> (files to copy
# into a scratch root, relative to REFERENCE, by their path in the download; extra folders markers need).
OFFICIAL_METADATA = {
    "cub": ({"classes.txt": "cub200_2011/classes.txt", "images.txt": "cub200_2011/images.txt"}, ()),
    "thudogs": ({"TrainAndValList/train.lst": "tsinghua_dogs/train.lst",
                 "TrainAndValList/validation.lst": "tsinghua_dogs/validation.lst"}, ("low-resolution",)),
    "places365": ({"categories_places365.txt": "places365/categories_places365.txt"}, ()),
    "minc2500": ({"categories.txt": "minc2500/categories.txt"}, ()),
}


def reference_classes(dataset: str, options: dict, scratch: Path) -> list[str] | None:
    """The adapter's class names for the real dataset, or None where the repository holds no
    official metadata to derive them from (FGVC-Aircraft)."""
    if dataset in ("imagenet", "webvision"):  # classes are wnids, in the shipped ImageNet-1k order
        return list(imagenet_synsets())
    if dataset == "flowers102":
        return flowers102_class_names()
    if dataset == "dtd":  # the 47 DTD categories; the adapter sorts the label files' folder names
        return sorted(DTD_CLASSES)
    if dataset == "stanford_cars":  # cars_meta.mat's class_names, extracted verbatim
        return (REFERENCE / "stanford_cars" / "stanford_cars_class_names_from_cars_meta.txt").read_text().splitlines()
    if dataset not in OFFICIAL_METADATA:
        return None
    files, folders = OFFICIAL_METADATA[dataset]
    root = scratch / dataset
    for target, source in files.items():
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REFERENCE / source, root / target)
    for folder in folders:
        (root / folder).mkdir(parents=True, exist_ok=True)
    return get_adapter(dataset)(root, **options).read_classes()


def problems_of(folder: Path, scratch: Path) -> list[str]:
    """What is wrong with a published manifest folder (empty when nothing)."""
    try:
        manifest = Manifest.load(folder)  # version and JSON schema
        rows = {split: manifest.split(split) for split in manifest.split_names}  # sha256, counts, safe paths, labels
    except FgoodError as err:
        return [str(err)]
    classes = reference_classes(manifest.dataset, manifest.dataset_options, scratch)
    if classes is None:
        return [f"no official class list of {manifest.dataset} in tests/data/reference-meta to check against"]
    problems = []
    if manifest.kind == "benchmark":
        if manifest.data["dataset"]["num_classes"] != len(classes):
            problems.append(f"num_classes {manifest.data['dataset']['num_classes']}, the adapter has {len(classes)}")
        for entry in manifest.data["id_classes"] + manifest.data["ood_classes"]:
            if entry["index"] >= len(classes) or classes[entry["index"]] != entry["name"]:
                problems.append(f"class {entry['index']} is named {entry['name']!r}, not as the adapter names it")
        id_names = manifest.id_class_names
        ood_names = {c["name"] for c in manifest.data["ood_classes"]}
        for split, split_rows in rows.items():
            for path, label, name in zip(split_rows.paths, split_rows.labels, split_rows.class_names):
                if (id_names[label] != name) if label >= 0 else (name not in ood_names):
                    problems.append(f"{split}: {path} has label {label} and class {name!r}, which disagree")
                    break
    else:
        known = set(classes)
        for split, split_rows in rows.items():
            unknown = next((name for name in split_rows.class_names if name not in known), None)
            if unknown is not None:
                problems.append(f"{split}: class {unknown!r} is not a class of {manifest.dataset}")
    return problems


def test_committed_manifests_are_valid(tmp_path):
    """Every manifest committed under manifests/ (none yet: a release adds them; the checker itself
    is tested below on a built benchmark, so this cannot pass by checking nothing wrong)."""
    problems = {folder.relative_to(MANIFESTS).as_posix(): problems_of(folder, tmp_path) for folder in PUBLISHED}
    assert {name: found for name, found in problems.items() if found} == {}


def test_committed_manifests_are_found_wherever_they_are(tmp_path):
    """The scan above finds manifests at any depth of manifests/ (benchmarks, ood/, outliers/)."""
    nested = tmp_path / "manifests"
    for relative in ("bird", "ood/places365", "outliers/webvision-bird"):
        (nested / relative).mkdir(parents=True)
        (nested / relative / "manifest.json").write_text("{}")
    (nested / "inet").mkdir()
    assert sorted(p.parent.relative_to(nested).as_posix() for p in nested.rglob("manifest.json")) == \
        ["bird", "ood/places365", "outliers/webvision-bird"]


def rewrite_split(folder: Path, split: str, edit) -> None:
    """Change a split file and update the manifest's sha256 and count, as a careless publisher might."""
    path = folder / "splits" / f"{split}.txt"
    lines = path.read_text().splitlines(keepends=True)
    content = "".join([lines[0], *edit(lines[1:])]).encode()
    path.unlink()
    path.write_bytes(content)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["splits"][split].update(sha256=sha256_bytes(content), count=content.count(b"\n") - 1)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


@pytest.fixture
def published_bird(full_cub, tmp_path):
    """The bird benchmark built from the real CUB metadata and a predictions file (build-splits checks
    that every listed image is there: conftest's full_cub has them all)."""
    from fgood_bench.ranking.build import BuildRequest, build_splits

    root = full_cub
    test = load_dataset("cub", root).split("test")
    logits = np.random.default_rng(0).normal(size=(test.num_rows, 200)).astype(np.float32)
    np.savez(tmp_path / "preds.npz", paths=np.array(test.column("path").to_pylist()), logits=logits)
    return build_splits(BuildRequest(root=root, out=tmp_path / "release", benchmark="bird",
                                     predictions=tmp_path / "preds.npz")).parent


def test_checker_accepts_a_published_benchmark_and_catches_each_kind_of_breakage(published_bird, tmp_path):
    assert problems_of(published_bird, tmp_path) == []

    renamed = tmp_path / "renamed"
    shutil.copytree(published_bird, renamed)
    manifest = json.loads((renamed / "manifest.json").read_text())
    old_name = manifest["id_classes"][0]["name"]
    manifest["id_classes"][0]["name"] = new_name = old_name.replace("_", " ")  # not the adapter's spelling
    (renamed / "manifest.json").write_text(json.dumps(manifest))
    for split in ("id_train", "id_test"):  # renamed in the split files too: the loader refuses rows that disagree
        rewrite_split(renamed, split, lambda rows: [row.replace(f"\t{old_name}\n", f"\t{new_name}\n") for row in rows])
    assert any("not as the adapter names it" in p for p in problems_of(renamed, tmp_path))

    edited = tmp_path / "edited"
    shutil.copytree(published_bird, edited)
    (edited / "splits" / "id_test.txt").write_text((edited / "splits" / "id_test.txt").read_text() + "images/x.jpg\t0\tx\n")
    assert "the split file was changed" in problems_of(edited, tmp_path)[0]

    mislabelled = tmp_path / "mislabelled"
    shutil.copytree(published_bird, mislabelled)
    rewrite_split(mislabelled, "ood_test", lambda rows: [rows[0].replace("\t-1\t", "\t0\t")] + rows[1:])
    assert any("which disagree" in p for p in problems_of(mislabelled, tmp_path))

    unschematic = tmp_path / "unschematic"
    shutil.copytree(published_bird, unschematic)
    manifest = json.loads((unschematic / "manifest.json").read_text())
    del manifest["ranking"]
    (unschematic / "manifest.json").write_text(json.dumps(manifest))
    assert "does not fit the manifest schema" in problems_of(unschematic, tmp_path)[0]


def test_checker_on_outlier_and_ood_sets(tmp_path):
    from fgood_bench.manifests.ood_set import build_ood_set
    from fgood_bench.outliers.filter import filter_outliers

    webvision = synthetic.write_sample("webvision", tmp_path / "webvision")
    outliers = filter_outliers("bird", "webvision", webvision, tmp_path / "release" / "outliers", progress=False).parent
    places = synthetic.write_sample("places365", tmp_path / "places")
    ood = build_ood_set("places365", places, tmp_path / "release" / "ood").parent
    assert problems_of(outliers, tmp_path) == [] and problems_of(ood, tmp_path) == []
    rewrite_split(outliers, "train", lambda rows: [rows[0].replace("n01440764", "n99999999")] + rows[1:])
    assert problems_of(outliers, tmp_path) == ["train: class 'n99999999' is not a class of webvision"]
    rewrite_split(ood, "ood_test", lambda rows: [row.replace("/a/airfield", "/a/airport") for row in rows])
    assert problems_of(ood, tmp_path) == ["ood_test: class '/a/airport' is not a class of places365"]


@pytest.mark.parametrize("dataset", ["cub", "thudogs", "places365", "minc2500"])
def test_reference_classes_are_read_by_the_adapters(dataset, tmp_path):
    classes = reference_classes(dataset, {}, tmp_path)
    assert len(classes) == {"cub": 200, "thudogs": 130, "places365": 365, "minc2500": 23}[dataset]
    assert len(set(classes)) == len(classes)
