"""Dataset adapters: each reads one official download in its native layout (one module each).

>>> from fgood_bench.datasets import load_index
>>> index = load_index("cub", "/data/CUB_200_2011")       # doctest: +SKIP
>>> index.num_classes, index.split_counts()                  # doctest: +SKIP
(200, {'train': 5994, 'test': 5794})
"""

from __future__ import annotations

from pathlib import Path

from fgood_bench.datasets.base import DatasetAdapter, DatasetIndex
from fgood_bench.datasets.cub import CUB
from fgood_bench.datasets.dtd import DTD
from fgood_bench.datasets.fgvc_aircraft import FGVCAircraft
from fgood_bench.datasets.flowers102 import Flowers102
from fgood_bench.datasets.imagefolder import ImageFolder
from fgood_bench.datasets.imagenet import ImageNet
from fgood_bench.datasets.minc2500 import MINC2500
from fgood_bench.datasets.places365 import Places365
from fgood_bench.datasets.stanford_cars import StanfordCars
from fgood_bench.datasets.thudogs import TsinghuaDogs
from fgood_bench.datasets.webvision import WebVision
from fgood_bench.errors import FgoodError

ADAPTERS: dict[str, type[DatasetAdapter]] = {
    adapter.name: adapter
    for adapter in (
        CUB, TsinghuaDogs, Flowers102, StanfordCars, FGVCAircraft,
        Places365, WebVision, MINC2500, DTD, ImageNet, ImageFolder,
    )
}


def get_adapter(name: str) -> type[DatasetAdapter]:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise FgoodError(f"unknown dataset {name!r}; choose from {', '.join(ADAPTERS)}") from None


def load_index(name: str, root: str | Path, **options) -> DatasetIndex:
    """Parse the dataset ``name`` found under ``root``; ``options`` are adapter options."""
    return get_adapter(name)(root, **options).load()


# The former name, kept for existing code; it is easily confused with Hugging Face's
# ``datasets.load_dataset`` when both are imported.
load_dataset = load_index

__all__ = ["ADAPTERS", "DatasetAdapter", "DatasetIndex", "get_adapter", "load_index", "load_dataset"]
