"""Filtering a full-size WebVision outlier set: 2.4 M file-list lines, against a Python baseline.

Writes a WebVision layout whose info/ file lists have the full size (1,631 queries, about 2.4 M
training lines; no image files: filtering reads the lists, never the folders), then times
`fgood-bench filter-outliers dog` end to end (parse, exclude, write manifest and report) and
reports its peak memory. The baseline in the same run is a plain Python read + split + set
lookup of the same lists. Targets: under 10 s and under 2 GB on a 2-core machine.

Usage: python scripts/bench_outliers.py [--lines 2400000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from fgood_bench.datasets import synthetic
from fgood_bench.datasets.imagenet import imagenet_synsets
from fgood_bench.outliers.filter import filter_outliers


def write_lists(root: Path, lines: int, queries: int = 1631) -> None:
    synsets = list(imagenet_synsets().items())
    rng = np.random.default_rng(0)
    query_label = rng.integers(0, 1000, queries)
    info = root / "info"
    synthetic.write_text(info / "synsets.txt", (f"{w} {n}" for w, n in synsets))
    synthetic.write_text(info / "queries_synsets_map.txt", (f"{q + 1} {query_label[q] + 1}" for q in range(queries)))
    for source, count in (("google", lines // 2), ("flickr", lines - lines // 2)):
        query = rng.integers(0, queries, count)
        text = "".join(f"{source}/q{q + 1:04d}/{i:07d}.jpg {query_label[q]}\n" for i, q in enumerate(query))
        (info / f"train_filelist_{source}.txt").write_text(text)
        for q in range(queries):
            (root / source / f"q{q + 1:04d}").mkdir(parents=True, exist_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=2_400_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "WebVision"
        write_lists(root, args.lines)
        start = time.perf_counter()
        excluded = {w for w in list(imagenet_synsets())[151:269]}  # the dog wnids, roughly
        wnids = list(imagenet_synsets())
        kept = 0
        for source in ("google", "flickr"):
            with open(root / "info" / f"train_filelist_{source}.txt") as handle:
                for line in handle:
                    path, label = line.split()
                    kept += wnids[int(label)] not in excluded
        baseline = time.perf_counter() - start
        start = time.perf_counter()
        manifest = filter_outliers("dog", "webvision", root, Path(scratch) / "out", progress=False)
        ours = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{args.lines:,} WebVision file-list lines")
    print(f"baseline: Python read + split + set lookup, nothing written: {baseline:6.2f} s")
    print(f"fgood-bench filter-outliers dog (manifest + report written): {ours:6.2f} s (target < 10 s)")
    print(f"peak memory of this process: {peak:.2f} GiB (target < 2 GB); manifest {manifest.name}")


if __name__ == "__main__":
    main()
