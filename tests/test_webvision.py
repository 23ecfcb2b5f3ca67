import pytest

from conftest import replace_file
from fgood_bench.datasets import load_dataset, synthetic
from fgood_bench.datasets.imagenet import imagenet_synsets
from fgood_bench.errors import DatasetError

IMAGENET = list(imagenet_synsets().items())
# The 1,000 ImageNet-1k concepts with Chihuahua, tench and brambling first: a list not in sorted-wnid order
FIRST = ("n02085620", "n01440764", "n01530575")
UNSORTED_SYNSETS = [(w, n) for w in FIRST for x, n in IMAGENET if x == w] + [(w, n) for w, n in IMAGENET if w not in FIRST]


def test_sample_with_both_sources_and_val(sample):
    index = load_dataset("webvision", sample("webvision"))
    assert index.split_counts() == {"train": 18, "val": 6}
    first = index.samples.slice(0, 1).to_pylist()[0]
    assert first == {"path": "google/q0001/google_1_0.jpg", "label": 0, "class_name": "n01440764",
                     "split": "train", "wnid": "n01440764", "source": "google", "query": 1}
    val = index.split("val").to_pylist()[0]
    assert (val["path"], val["source"], val["query"]) == ("val_images_256/val000001.jpg", "val", None)


def test_labels_map_through_synsets_file_to_sorted_wnids(tmp_path):
    train = {"google": [("google/q0007/a.jpg", 0), ("google/q0008/b.jpg", 1)]}
    root = synthetic.write_webvision(tmp_path, UNSORTED_SYNSETS, train, None)
    index = load_dataset("webvision", root)
    assert index.classes == tuple(imagenet_synsets())
    rows = index.split("train").to_pylist()
    chihuahua = index.classes.index("n02085620")
    assert [(r["wnid"], r["label"], r["query"]) for r in rows] == [("n02085620", chihuahua, 7), ("n01440764", 0, 8)]
    assert "val_images_256" in index.absent["val"]


def test_only_google_downloaded(sample):
    root = sample("webvision")
    (root / "flickr").rename(root / "flickr_elsewhere")
    index = load_dataset("webvision", root)
    assert set(index.split("train").column("source").to_pylist()) == {"google"}


def test_bad_query_folder_and_label(sample):
    root = sample("webvision")
    replace_file(root / "info" / "train_filelist_google.txt", "google/q0001/a.jpg 0\ngoogle/misc/b.jpg 1\n")
    with pytest.raises(DatasetError, match=r"train_filelist_google.txt: line 2: expected google/qNNNN/<image>"):
        load_dataset("webvision", root)
    replace_file(root / "info" / "train_filelist_google.txt", "google/q0001/a.jpg 1000\n")
    with pytest.raises(DatasetError, match=r"train_filelist_google.txt: line 1: label 1000 out of range 0..999"):
        load_dataset("webvision", root)


def test_lists_with_extra_whitespace_read_as_clean_ones(sample):
    """Trailing spaces, a tab, doubled spaces, CRLF and a BOM: the format is whitespace-separated
    (Arrow's fast reader refuses such lines; the adapter then parses line by line)."""
    root = sample("webvision")
    clean = load_dataset("webvision", root).samples
    listing = root / "info" / "train_filelist_google.txt"
    lines = listing.read_text().splitlines()
    messy = [lines[0] + " ", lines[1].replace(" ", "\t"), lines[2].replace(" ", "  "), *lines[3:]]
    replace_file(listing, ("\ufeff" + "\r\n".join(messy) + "\r\n").encode("utf-8"))
    assert load_dataset("webvision", root).samples.equals(clean)


def test_malformed_synsets(sample):
    root = sample("webvision")
    replace_file(root / "info" / "synsets.txt", "tench\n")
    with pytest.raises(DatasetError, match=r"synsets.txt: line 1: expected '<wnid> <names>'"):
        load_dataset("webvision", root)


def test_synsets_must_be_imagenet_1k(sample):
    """WebVision 1.0's concepts are ImageNet-1k's; another list (WebVision 2.0's 5,000 concepts)
    would pass its non-ImageNet concepts through outlier filtering unfiltered: refused."""
    root = sample("webvision")
    lines = (root / "info" / "synsets.txt").read_text().splitlines()
    replace_file(root / "info" / "synsets.txt", "\n".join([*lines, "n00004475 organism, being"]) + "\n")  # a 1,001st
    with pytest.raises(DatasetError, match=r"info/synsets.txt: 1 of its 1,001 concepts are not ImageNet-1k "
                       r"\(first: n00004475\); WebVision 1.0 lists exactly the 1,000 ImageNet-1k wnids"):
        load_dataset("webvision", root)
    replace_file(root / "info" / "synsets.txt", "\n".join(lines[:-1]) + "\n")
    with pytest.raises(DatasetError, match=r"synsets.txt: 1 ImageNet-1k concepts are missing \(first: n15075141\)"):
        load_dataset("webvision", root)
    replace_file(root / "info" / "synsets.txt", "\n".join([*lines[:-1], "n00004475 organism"]) + "\n")
    with pytest.raises(DatasetError, match=r"1 of its 1,000 concepts are not ImageNet-1k"):
        load_dataset("webvision", root)


def test_full_val_gives_official_counts(tmp_path):
    from conftest import REFERENCE

    synsets = [tuple(line.split(" ", 1)) for line in (REFERENCE / "imagenet" / "synset_words.txt").read_text().splitlines() if line]
    val = [(f"val{i:09d}.jpg", i % 1000) for i in range(50000)]
    train = {"google": [(f"google/q{q:04d}/{k}.jpg", q - 1) for q in range(1, 1001) for k in range(2)]}
    with synthetic.hardlinked_images():
        root = synthetic.write_webvision(tmp_path, synsets, train, val)
    index = load_dataset("webvision", root)
    assert index.num_classes == 1000 and index.split_counts() == {"train": 2000, "val": 50000}
    assert "flickr" not in set(index.split("train").column("source").to_pylist())
