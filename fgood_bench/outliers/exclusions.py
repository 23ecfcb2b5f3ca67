"""Which ImageNet-1k / WebVision concepts an outlier set must not contain, derived from WordNet.

A benchmark's exclusion set is every ImageNet-1k concept that is a hyponym (transitively,
instance hyponyms included) of one of the benchmark's WordNet roots, or the root itself. The
default roots follow the project's WordNet study (``shared/docs/wordnet.md``): they include what
hand-typed lists miss (all 59 birds, warplanes for Aircraft) and the car-part classes whose
images are car close-ups.
"""

from __future__ import annotations

from dataclasses import dataclass

from fgood_bench.datasets.imagenet import imagenet_synsets
from fgood_bench.errors import FgoodError
from fgood_bench.outliers.wordnet import ancestors, shipped_table

BENCHMARK_ROOTS: dict[str, tuple[str, ...]] = {
    "bird": ("bird.n.01",),
    "dog": ("dog.n.01", "wild_dog.n.01"),
    "flower": ("flower.n.01",),
    "car": ("motor_vehicle.n.01", "bus.n.01", "car_wheel.n.01", "car_mirror.n.01", "grille.n.02"),
    "aircraft": ("aircraft.n.01", "wing.n.02"),
}


@dataclass(frozen=True)
class Excluded:
    wnid: str
    names: str
    matched: str  # the root synset name that matched, or "--exclude-wnid"


def root_wnid(name: str) -> str:
    """The wnid of a root given as an NLTK synset name (``dog.n.01``) or a wnid (``n02084071``)."""
    table = shipped_table()
    if name in table:
        return name
    by_name = {synset.name: wnid for wnid, synset in table.items()}
    if name in by_name:
        return by_name[name]
    _check_unknown_root(name)
    return ""  # a real synset without ImageNet-1k hyponyms: it excludes nothing


def _check_unknown_root(name: str) -> None:
    """A root outside the shipped table has no ImageNet-1k hyponym; WordNet, if installed, tells
    a real synset from a typo."""
    from fgood_bench.outliers.wordnet import open_wordnet

    try:
        wordnet = open_wordnet()
    except FgoodError:
        raise FgoodError(f"--exclude-root {name!r}: not a synset above any ImageNet-1k class "
                         "(install WordNet to check other names)") from None
    try:
        synset = wordnet.synset(name) if not name.startswith("n") or not name[1:].isdigit() else \
            wordnet.synset_from_pos_and_offset("n", int(name[1:]))
    except Exception:
        raise FgoodError(f"--exclude-root {name!r}: no such WordNet 3.0 noun synset (expected e.g. dog.n.01 or n02084071)") from None
    if synset.pos() != "n":
        raise FgoodError(f"--exclude-root {name!r}: not a noun synset")


def exclusion_set(roots: list[str] = (), wnids: list[str] = ()) -> list[Excluded]:
    """ImageNet-1k concepts under any of ``roots`` plus the ``wnids`` given, sorted by wnid."""
    synsets = imagenet_synsets()
    table = shipped_table()
    for wnid in wnids:
        if wnid not in synsets:
            raise FgoodError(f"--exclude-wnid {wnid!r}: not one of the 1,000 ImageNet-1k / WebVision concepts")
    resolved = [(name, root_wnid(name)) for name in roots]
    excluded = {}
    for wnid in synsets:
        up = ancestors(wnid)
        match = next((name for name, root in resolved if root and root in up), None)
        if match is not None:  # a root given as a wnid is shown with its synset name
            excluded[wnid] = Excluded(wnid, synsets[wnid], f"{match} ({table[match].name})" if match in table else match)
    for wnid in wnids:
        excluded.setdefault(wnid, Excluded(wnid, synsets[wnid], "--exclude-wnid"))
    return [excluded[w] for w in sorted(excluded)]


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
