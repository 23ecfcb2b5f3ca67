import pytest

from conftest import REFERENCE, replace_file
from fgood_bench.datasets import load_dataset, synthetic
from fgood_bench.errors import DatasetError


@pytest.fixture(scope="module")
def full_minc(tmp_path_factory):
    categories = (REFERENCE / "minc2500" / "categories.txt").read_text().splitlines()
    files = {c: [f"images/{c}/{c}_{k:06d}.jpg" for k in range(2500)] for c in categories}
    partitions = {f"{stem}1": [f for c in categories for f in files[c][start:stop]]
                  for stem, start, stop in (("train", 0, 2125), ("validate", 2125, 2250), ("test", 2250, 2500))}
    with synthetic.hardlinked_images():
        return synthetic.write_minc2500(tmp_path_factory.mktemp("minc"), categories, partitions)


def test_full_download_gives_official_counts(full_minc):
    index = load_dataset("minc2500", full_minc)
    assert index.num_classes == 23
    assert index.split_counts() == {"train": 48875, "val": 2875, "test": 5750}
    assert index.classes[15] == "polishedstone" and index.classes[11] == "other"


def test_partition_option(full_minc):
    assert set(load_dataset("minc2500", full_minc, partition=1).splits) == {"train", "val", "test"}
    with pytest.raises(DatasetError, match=r"no official split of MINC-2500 is present \(train: .*labels/train2.txt not found"):
        load_dataset("minc2500", full_minc, partition=2)
    with pytest.raises(DatasetError, match="partition must be 1..5, got 6"):
        load_dataset("minc2500", full_minc, partition=6)


def test_unknown_category(sample):
    root = sample("minc2500")
    replace_file(root / "labels" / "test1.txt", "images/brick/brick_000200.jpg\nimages/marble/marble_000001.jpg\n")
    with pytest.raises(DatasetError, match=r"test1.txt: line 2: category 'marble' is not in categories.txt"):
        load_dataset("minc2500", root)
