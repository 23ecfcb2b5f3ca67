"""WordNet 3.0 for outlier filtering: the shipped ImageNet-1k ancestor table, and NLTK to regenerate it.

Filtering needs no WordNet install: the package ships, with the WordNet 3.0 licence notice, the
subgraph of WordNet 3.0 noun synsets that are ancestors (through hypernyms and instance
hypernyms) of the 1,000 ImageNet-1k classes. ``scripts/make_imagenet_ancestors.py`` derives it
from WordNet through NLTK; a test checks that the shipped table equals a fresh derivation.

WordNet is found through NLTK's data path (``nltk.download('wordnet')``), or in Debian's
``wordnet-base`` package (``/usr/share/wordnet``), which NLTK cannot read as it is: it lacks the
``lexnames`` file and NLTK's reader insists on its own mapping data. It is copied once into a
cache folder with ``lexnames`` written from lexnames(5WN). Debian rebuilds the data files, which
keeps noun offsets (all ImageNet needs) but not adjective and verb offsets.
"""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from fgood_bench.errors import FgoodError

DEBIAN_WORDNET = Path("/usr/share/wordnet")
INSTALL_HINT = (
    "WordNet 3.0 not found: install it with `python -m nltk.downloader wordnet` (or nltk.download('wordnet')), "
    "or on Debian/Ubuntu `apt-get install --no-install-recommends wordnet-base`"
)
# The 45 lexicographer files of WordNet 3.0 in file-number order (lexnames(5WN)).
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body noun.cognition "
    "noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive noun.object "
    "noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape "
    "noun.state noun.substance noun.time verb.body verb.change verb.cognition verb.communication verb.competition "
    "verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception verb.possession "
    "verb.social verb.stative verb.weather adj.ppl"
).split()
SYNTACTIC_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


@dataclass(frozen=True)
class Synset:
    """One node of the shipped table."""

    wnid: str
    name: str  # NLTK's name, e.g. dog.n.01
    parents: tuple[str, ...]  # hypernym and instance-hypernym wnids
    lemmas: str  # comma-separated lemma names, underscores as spaces


def wnid_of(synset) -> str:
    return f"n{synset.offset():08d}"


@lru_cache(maxsize=1)
def open_wordnet():
    """NLTK's reader of WordNet 3.0 (nltk_data, else Debian's wordnet-base); FgoodError when absent."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    try:
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()
        return wordnet
    except LookupError:
        pass
    if not (DEBIAN_WORDNET / "data.noun").is_file():
        raise FgoodError(INSTALL_HINT)

    class DebianWordNet30(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):  # it *is* WordNet 3.0: no mapping data to load
            return None

    copy = _debian_copy()
    nltk.data.path.insert(0, str(copy))  # NLTK >= 3.10 reads only below its data path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available"
        return DebianWordNet30(str(copy), None)


def wordnet_available() -> bool:
    """Whether :func:`open_wordnet` finds WordNet 3.0 (the one place that decides where it comes from)."""
    try:
        open_wordnet()
    except FgoodError:
        return False
    return True


def _debian_copy() -> Path:
    """Debian's files plus a ``lexnames`` file, in a cache folder NLTK may read."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fgood-bench" / "wordnet-3.0-debian"
    if not (cache / "lexnames").is_file():
        staging = cache.with_name(cache.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for path in DEBIAN_WORDNET.iterdir():
            if path.is_file():
                shutil.copyfile(path, staging / path.name)
        lines = [f"{i:02d}\t{name}\t{SYNTACTIC_CATEGORY[name.split('.')[0]]}" for i, name in enumerate(LEXNAMES)]
        (staging / "lexnames").write_text("\n".join(lines) + "\n")
        shutil.rmtree(cache, ignore_errors=True)
        staging.replace(cache)
    return cache


def derive_ancestor_table(wordnet, wnids: list[str]) -> list[Synset]:
    """Every ancestor of ``wnids`` (themselves included), sorted by wnid."""
    nodes = {}
    stack = []
    for wnid in wnids:
        try:
            stack.append(wordnet.synset_from_pos_and_offset("n", int(wnid[1:])))
        except Exception:
            raise FgoodError(f"{wnid}: not a WordNet 3.0 noun synset") from None
    while stack:
        synset = stack.pop()
        wnid = wnid_of(synset)
        if wnid in nodes:
            continue
        parents = synset.hypernyms() + synset.instance_hypernyms()
        lemmas = ", ".join(name.replace("_", " ") for name in synset.lemma_names())
        nodes[wnid] = Synset(wnid, synset.name(), tuple(sorted(wnid_of(p) for p in parents)), lemmas)
        stack.extend(parents)
    return [nodes[w] for w in sorted(nodes)]


def table_text(table: list[Synset]) -> str:
    lines = ["wnid\tname\tparents\tlemmas"]
    lines += [f"{s.wnid}\t{s.name}\t{','.join(s.parents)}\t{s.lemmas}" for s in table]
    return "\n".join(lines) + "\n"


@lru_cache(maxsize=1)
def shipped_table() -> dict[str, Synset]:
    """The ImageNet-1k ancestor subgraph shipped with fgood-bench, by wnid."""
    text = resources.files("fgood_bench.outliers").joinpath("resources/imagenet_ancestors.tsv").read_text("utf-8")
    table = {}
    for line in text.splitlines()[1:]:
        wnid, name, parents, lemmas = line.split("\t")
        table[wnid] = Synset(wnid, name, tuple(p for p in parents.split(",") if p), lemmas)
    return table


def ancestors(wnid: str) -> set[str]:
    """``wnid`` and all its ancestors in the shipped table."""
    table = shipped_table()
    seen, stack = {wnid}, [wnid]
    while stack:
        for parent in table[stack.pop()].parents:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen
