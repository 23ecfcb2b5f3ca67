import pytest

from conftest import replace_file
from fgood_bench.datasets import load_dataset, synthetic
from fgood_bench.errors import DatasetError

VARIANTS = [f"Variant-{i:03d}" for i in range(97)] + ["BAE 146-200", "F/A-18", "DHC-1"]


@pytest.fixture(scope="module")
def full_aircraft(tmp_path_factory):
    counts = {"train": 3334, "val": 3333, "test": 3333}
    image_ids = iter(range(34309, 10**7, 97))
    splits = {split: [(f"{next(image_ids):07d}", i % 100) for i in range(n)] for split, n in counts.items()}
    with synthetic.hardlinked_images():
        return synthetic.write_fgvc_aircraft(tmp_path_factory.mktemp("aircraft"), VARIANTS, splits)


def test_full_download_gives_official_counts(full_aircraft):
    index = load_dataset("fgvc_aircraft", full_aircraft)
    assert index.num_classes == 100
    assert index.split_counts() == {"train": 3334, "val": 3333, "test": 3333}


def test_ids_keep_leading_zeros_and_names_keep_spaces(full_aircraft):
    rows = load_dataset("fgvc_aircraft", full_aircraft).split("train").to_pylist()
    assert rows[0]["path"] == "data/images/0034309.jpg"
    assert rows[97]["class_name"] == "BAE 146-200" and rows[98]["class_name"] == "F/A-18"
    assert rows[98]["label"] == 98  # variants.txt order


def test_family_and_manufacturer_levels(sample):
    root = sample("fgvc_aircraft")
    index = load_dataset("fgvc_aircraft", root, level="family")
    assert index.classes == ("707", "BAE", "F/A")
    assert index.split_counts() == {"train": 6, "val": 6, "test": 6}
    assert load_dataset("fgvc_aircraft", root, level="manufacturer").classes == ("Maker 7", "Maker B", "Maker F")
    (root / "data" / "images_family_test.txt").unlink()
    assert "images_family_test.txt not found" in load_dataset("fgvc_aircraft", root, level="family").absent["test"]
    with pytest.raises(DatasetError, match="level must be one of variant, family, manufacturer"):
        load_dataset("fgvc_aircraft", root, level="model")


def test_unknown_class_name(sample):
    root = sample("fgvc_aircraft")
    replace_file(root / "data" / "images_variant_val.txt", "0000030 707-320\n0000031 Concorde\n")
    with pytest.raises(DatasetError, match=r"images_variant_val.txt: line 2: class 'Concorde' is not in data/variants.txt"):
        load_dataset("fgvc_aircraft", root)


def test_lines_split_at_the_first_space_only(sample):
    """As torchvision's split(" ", 1): the id ends at the first space, the name is all the rest."""
    root = sample("fgvc_aircraft")
    replace_file(root / "data" / "images_variant_val.txt", "0000030 BAE 146-200\n0000031\t707-320\n")
    with pytest.raises(DatasetError, match=r"images_variant_val.txt: line 2: expected '<image id> <class name>', "
                                           r"got '0000031\\t707-320'"):
        load_dataset("fgvc_aircraft", root)
    replace_file(root / "data" / "images_variant_val.txt", "0000030 BAE 146-200\n0000031  707-320\n")
    with pytest.raises(DatasetError, match=r"line 2: class ' 707-320' is not in data/variants.txt"):
        load_dataset("fgvc_aircraft", root)
    replace_file(root / "data" / "images_variant_val.txt", "0000030 BAE 146-200\n")
    assert load_dataset("fgvc_aircraft", root).split("val").to_pylist()[0]["class_name"] == "BAE 146-200"


def test_missing_class_file(sample):
    root = sample("fgvc_aircraft")
    (root / "data" / "variants.txt").unlink()
    with pytest.raises(DatasetError, match=r"data/variants.txt: file is missing"):
        load_dataset("fgvc_aircraft", root)


def test_not_an_aircraft_folder(tmp_path):
    with pytest.raises(DatasetError, match=r"not a FGVC-Aircraft 2013b download: expected data/images or data/variants.txt in one of '.', 'fgvc-aircraft-2013b'"):
        load_dataset("fgvc_aircraft", tmp_path)
