"""Each source dataset's stated terms and the Hugging Face card's licence fields built from them."""

import re
from pathlib import Path

import pytest

from fgood_bench.datasets import ADAPTERS
from fgood_bench.manifests.export import dataset_card
from fgood_bench.manifests.manifest import Manifest
from fgood_bench.manifests.sources import SEE_PAGE, SOURCES, source_of

# the card's license id and a phrase of the terms each dataset's own page / README / paper states
# (sources in fgood_bench/manifests/sources.py); None: no terms found, the card points at the page
STATED = {
    "cub": ("unknown", None),
    "thudogs": ("other", "available for academic purposes"),
    "flowers102": ("unknown", None),
    "stanford_cars": ("unknown", None),
    "fgvc_aircraft": ("other", "Non-commercial research use only"),
    "places365": ("other", "You will NOT distribute the above images"),
    "dtd": ("other", "made available to the computer vision community for research purposes"),
    "imagenet": ("other", "ImageNet's terms of access"),
    "webvision": ("unknown", None),
    "minc2500": ("unknown", None),
}


def test_every_dataset_adapter_has_its_source_and_no_other():
    assert set(SOURCES) == set(ADAPTERS) - {"imagefolder"} == set(STATED)


@pytest.mark.parametrize("dataset", sorted(STATED))
def test_terms_and_licence_id_as_the_dataset_states_them(dataset):
    license_id, phrase = STATED[dataset]
    source = SOURCES[dataset]
    assert source.license == license_id
    if phrase is None:
        assert source.terms == SEE_PAGE
    else:
        assert phrase in source.terms and source.terms != SEE_PAGE
        assert not any(phrase in SOURCES[other].terms for other in STATED if other != dataset)
    assert source.homepage.startswith("http") and source.reference


def card_of(dataset: str):
    """The card ``export --format hf`` writes for a one-split manifest of ``dataset``."""
    import datasets
    from huggingface_hub import DatasetCard

    manifest = Manifest(Path("unused"), {
        "benchmark": "demo", "kind": "ood-set", "dataset": {"id": dataset, "title": f"{dataset} title"},
        "splits": {"ood_test": {"count": 2}}})
    features = datasets.Features({"label": datasets.ClassLabel(names=["a"]), "path": datasets.Value("string")})
    return DatasetCard(dataset_card(manifest, features, {"ood_test": {"num_bytes": 10, "download_bytes": 20}}))


@pytest.mark.parametrize("dataset", sorted(STATED))
def test_hf_card_licence_fields_and_terms(dataset):
    card = card_of(dataset)
    source = SOURCES[dataset]
    metadata = card.data.to_dict()
    assert metadata["license"] == STATED[dataset][0]
    if metadata["license"] == "other":  # the Hub's rule: "other" comes with a name and a link
        assert metadata["license_name"] == f"{dataset.replace('_', '-')}-terms" and metadata["license_link"] == source.homepage
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", metadata["license_name"])  # the card template's `my-license-1.0` form
    else:
        assert "license_name" not in metadata and "license_link" not in metadata
    assert f"- Terms: {source.terms}\n" in card.text and f"- Project page: {source.homepage}\n" in card.text


def test_hf_card_of_a_folder_of_ones_own_images():
    card = card_of("imagefolder")
    assert source_of("imagefolder").license == "unknown"
    assert card.data.to_dict()["license"] == "unknown" and "license_link" not in card.data.to_dict()
    assert "their terms are the owner's to check" in card.text and "Project page" not in card.text
