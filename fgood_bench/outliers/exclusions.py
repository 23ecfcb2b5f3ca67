"""Which ImageNet-1k / WebVision concepts an outlier set must not contain, derived from WordNet.

A benchmark's exclusion set is every ImageNet-1k concept that is a hyponym (transitively,
instance hyponyms included) of one of the benchmark's WordNet roots, or the root itself. The
default roots follow the project's WordNet study (``shared/docs/wordnet.md``): they include what
hand-typed lists miss (all 59 birds, warplanes for Aircraft), and, added by hand, concepts that
WordNet files elsewhere whose images show the benchmark's objects (car close-ups, sled dogs, the
Flowers-102 class artichoke filed under vegetables). A root not in the shipped table is resolved
through WordNet; one that would exclude nothing is refused.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

from fgood_bench.datasets.imagenet import imagenet_synsets
from fgood_bench.errors import FgoodError
from fgood_bench.outliers import wordnet
from fgood_bench.outliers.wordnet import ancestors, shipped_table, wnid_of

# Each benchmark's roots. Most are WordNet domains; the others (given by wnid where added after the
# WordNet study) are single ImageNet-1k concepts that WordNet files elsewhere but whose images show
# the benchmark's objects, each with its reason (docs/outliers.md lists them). Every one is a leaf
# of ImageNet-1k, so it excludes itself only.
BENCHMARK_ROOTS: dict[str, tuple[str, ...]] = {
    "bird": ("bird.n.01",),
    "dog": (
        "dog.n.01", "wild_dog.n.01",
        "n03218198",  # dogsled.n.01: its images show sled dogs (huskies, malamutes: Tsinghua Dogs breeds)
        "n03803284",  # muzzle.n.03: ImageNet's images of this class are dogs wearing muzzles
    ),
    "flower": (
        "flower.n.01",
        "n07718747",  # artichoke.n.02: "artichoke" is a Flowers-102 class, but WordNet files it under food > vegetable
        "n11879895",  # rapeseed.n.01: its images are fields of yellow flowers (shared/docs/wordnet.md, proposed sets)
        "n03991062",  # pot.n.04, flowerpot: its images are potted flowers (shared/docs/wordnet.md, proposed sets)
    ),
    "car": (
        "motor_vehicle.n.01", "bus.n.01",
        "car_wheel.n.01", "car_mirror.n.01", "grille.n.02",  # car parts: their images are close-ups of cars
    ),
    "aircraft": (
        "aircraft.n.01",
        "wing.n.02",  # an airplane's wing: its images are mostly of aircraft
        "n04266014",  # space_shuttle.n.01: a winged orbiter (shared/docs/wordnet.md lists it as an option)
    ),
}
WNID = re.compile(r"n[0-9]{1,8}")


@dataclass(frozen=True)
class Excluded:
    wnid: str
    names: str
    matched: str  # the root that matched (with its canonical name), "--exclude-wnid" or "--exclude-list FILE"


def root_wnid(name: str) -> str:
    """The wnid of a root given as a WordNet 3.0 noun synset name (``dog.n.01``, or any name NLTK
    resolves to it, e.g. ``domestic_dog.n.01``) or a wnid (``n02084071``, also without its leading
    zeros). A root that is no synset, or has no ImageNet-1k concept under it (it would exclude
    nothing), is refused with one line."""
    table = shipped_table()
    if WNID.fullmatch(name):
        wnid = f"n{int(name[1:]):08d}"
        if wnid in table:
            return wnid
    else:
        canonical = _canonical_names()
        if name in canonical:
            return canonical[name]
    synset = _resolve_in_wordnet(name)
    if wnid_of(synset) not in table:
        shown = repr(name) if name == synset.name() else f"{name!r} ({synset.name()})"
        raise FgoodError(f"--exclude-root {shown}: no ImageNet-1k concept is under it, so it would exclude nothing")
    return wnid_of(synset)


@lru_cache(maxsize=1)
def _canonical_names() -> dict[str, str]:
    """NLTK's canonical synset names of the shipped table, to their wnids."""
    return {synset.name: wnid for wnid, synset in shipped_table().items()}


def _resolve_in_wordnet(name: str):
    """The WordNet 3.0 noun synset of a root that is not a canonical name or wnid of the shipped
    table (which holds only the synsets above ImageNet-1k classes): WordNet tells another name
    of a synset in it (``auto.n.01`` is ``car.n.01``) from a synset outside it and from a typo."""
    try:
        reader = wordnet.open_wordnet()
    except FgoodError:
        raise FgoodError(f"--exclude-root {name!r}: not the canonical name (e.g. dog.n.01) or wnid of a synset above "
                         "an ImageNet-1k class; other names need WordNet 3.0 to resolve (`python -m nltk.downloader "
                         "wordnet`, or `apt-get install wordnet-base`)") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NLTK warns, and returns None, for an offset with no synset
            synset = reader.synset_from_pos_and_offset("n", int(name[1:])) if WNID.fullmatch(name) else reader.synset(name)
    except Exception:
        synset = None
    if synset is None:
        raise FgoodError(f"--exclude-root {name!r}: no such WordNet 3.0 noun synset (expected e.g. dog.n.01 or n02084071)")
    if synset.pos() != "n":
        raise FgoodError(f"--exclude-root {name!r}: not a noun synset")
    return synset


def exclusion_set(roots: list[str] = (), wnids: list[str] = (), listed: dict[str, list[str]] | None = None) -> list[Excluded]:
    """ImageNet-1k concepts under any of ``roots``, plus the ``wnids`` given, plus the wnids of each
    ``--exclude-list`` file (``listed``: file name -> its wnids), sorted by wnid. A concept is
    attributed to the first root that matches, else to --exclude-wnid, else to the first list."""
    synsets = imagenet_synsets()
    table = shipped_table()
    given = [("--exclude-wnid", wnid) for wnid in wnids]
    given += [(f"--exclude-list {name}", wnid) for name, entries in (listed or {}).items() for wnid in entries]
    for option, wnid in given:
        if wnid not in synsets:
            raise FgoodError(f"{option} {wnid!r}: not one of the 1,000 ImageNet-1k / WebVision concepts")
    resolved = [(name, root_wnid(name)) for name in roots]
    excluded = {}
    for wnid in synsets:
        up = ancestors(wnid)
        match = next((name for name, root in resolved if root in up), None)
        if match is not None:
            excluded[wnid] = Excluded(wnid, synsets[wnid], _shown(match, table[dict(resolved)[match]].name))
    for option, wnid in given:
        excluded.setdefault(wnid, Excluded(wnid, synsets[wnid], option))
    return [excluded[w] for w in sorted(excluded)]


def _shown(root: str, canonical: str) -> str:
    """A root as given, with its canonical synset name when it was given otherwise (a wnid, another name)."""
    return root if root == canonical else f"{root} ({canonical})"


def benchmark_roots(benchmark: str | None, extra_roots: list[str] = (), all_benchmarks: bool = False) -> list[str]:
    """The default roots of ``benchmark`` (or of all five), plus extra ones."""
    roots: list[str] = []
    if all_benchmarks:
        for names in BENCHMARK_ROOTS.values():
            roots += names
    elif benchmark is not None:
        if benchmark not in BENCHMARK_ROOTS:
            raise FgoodError(f"unknown benchmark {benchmark!r}; choose from {', '.join(BENCHMARK_ROOTS)} or 'none'")
        roots += BENCHMARK_ROOTS[benchmark]
    return list(dict.fromkeys([*roots, *extra_roots]))
