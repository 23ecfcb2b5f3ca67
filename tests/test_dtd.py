import pyarrow.compute as pc
import pytest

from conftest import DTD_CLASSES, replace_file
from fgood_bench.datasets import load_dataset, synthetic
from fgood_bench.errors import DatasetError


@pytest.fixture(scope="module")
def full_dtd(tmp_path_factory):
    partitions = {}
    for k in range(1, 11):
        for s, split in enumerate(("train", "val", "test")):
            # each partition gives every class a different 40/40/40 cut of its 120 images
            partitions[f"{split}{k}"] = [f"{c}/{c}_{(i + 40 * s + 12 * k) % 120 + 1:04d}.jpg" for c in DTD_CLASSES for i in range(40)]
    with synthetic.hardlinked_images():
        return synthetic.write_dtd(tmp_path_factory.mktemp("dtd"), partitions)


def test_full_download_gives_official_counts(full_dtd):
    index = load_dataset("dtd", full_dtd.parent.parent)  # torchvision's root/dtd/dtd nesting
    assert index.root == full_dtd
    assert index.num_classes == 47
    assert index.split_counts() == {"train": 1880, "val": 1880, "test": 1880}
    # the stray KDE file sits where the real archive has it, and is ignored: 40 waffled images per split
    assert (full_dtd / "images" / "waffled" / ".directory").is_file()
    assert [p.name for p in (full_dtd / "images").glob("*/.*")] == [".directory"]
    waffled = index.samples.filter(pc.equal(index.samples.column("class_name"), "waffled"))
    assert len(waffled) == 120 and not any(p.endswith(".directory") for p in index.samples.column("path").to_pylist())
    assert index.classes == tuple(sorted(DTD_CLASSES))


def test_partitions_differ(full_dtd):
    first = load_dataset("dtd", full_dtd, partition=1).split("train").column("path").to_pylist()
    tenth = load_dataset("dtd", full_dtd, partition=10).split("train").column("path").to_pylist()
    assert first[0] == "images/banded/banded_0013.jpg" and first != tenth


def test_stray_folder_does_not_shift_labels(sample):
    root = sample("dtd")
    (root / "images" / "aaa_extra").mkdir()
    assert load_dataset("dtd", root).classes == ("banded", "blotchy", "waffled")


def test_malformed_label_line(sample):
    root = sample("dtd")
    replace_file(root / "labels" / "val1.txt", "banded/banded_0011.jpg\nfoggy_0001.jpg\n")
    with pytest.raises(DatasetError, match=r"val1.txt: line 2: expected <class>/<image>, got 'foggy_0001.jpg'"):
        load_dataset("dtd", root)
