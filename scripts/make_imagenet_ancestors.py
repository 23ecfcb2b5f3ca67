"""Regenerate fgood_bench/outliers/resources/imagenet_ancestors.tsv from WordNet 3.0 through NLTK.

The table holds every WordNet 3.0 noun synset that is an ancestor (through hypernyms and
instance hypernyms) of one of the 1,000 ImageNet-1k classes, the classes included:
``wnid <TAB> NLTK name <TAB> parent wnids <TAB> lemmas``. It ships with the WordNet 3.0 licence
notice (resources/WORDNET_LICENSE). Needs WordNet: `python -m nltk.downloader wordnet`, or
Debian's `apt-get install wordnet-base`.

Usage: python scripts/make_imagenet_ancestors.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fgood_bench.datasets.imagenet import imagenet_synsets
from fgood_bench.outliers.wordnet import derive_ancestor_table, open_wordnet, table_text

TARGET = Path(__file__).parents[1] / "fgood_bench" / "outliers" / "resources" / "imagenet_ancestors.tsv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare with the shipped table; exit 1 if they differ")
    args = parser.parse_args()
    text = table_text(derive_ancestor_table(open_wordnet(), list(imagenet_synsets())))
    if args.check:
        same = TARGET.read_text(encoding="utf-8") == text
        print("shipped table matches WordNet" if same else "shipped table DIFFERS from WordNet")
        return 0 if same else 1
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET} ({text.count(chr(10)) - 1} synsets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
