"""Speed of `fgood-bench inspect` building blocks, as ratios against a naive baseline in the same run.

1. Missing-file check: one ``os.scandir`` per folder (``missing_files``) against one
   ``os.path.isfile`` per listed image, on a generated ImageNet-like tree.
2. ``--check-images``: parallel decoding against a single process, on generated JPEGs of
   CUB size (500x375).

Usage: python scripts/bench_inspect.py [--images N] [--workers W]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fgood_bench.datasets import synthetic
from fgood_bench.datasets.base import missing_files
from fgood_bench.datasets.check import find_unreadable_images


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_missing(root: Path, count: int) -> None:
    relpaths = [f"train/n{c:08d}/img_{k}.JPEG" for c in range(count // 500) for k in range(500)]
    with synthetic.hardlinked_images():
        for rel in relpaths[::2]:  # half of them present
            synthetic.write_image(root / rel, 0)
    scan = best_of(3, lambda: missing_files(root, relpaths))
    naive = best_of(3, lambda: [p for p in relpaths if not os.path.isfile(root / p)])
    assert missing_files(root, relpaths) == [p for p in relpaths if not os.path.isfile(root / p)]
    print(f"missing-file check, {len(relpaths):,} paths: scandir {scan:.3f}s, isfile per path {naive:.3f}s "
          f"-> {naive / scan:.1f}x")


def bench_decode(root: Path, count: int, workers: int) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (375, 500, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    paths = [f"decode/{k}.jpg" for k in range(count)]
    (root / "decode").mkdir()
    for rel in paths:
        (root / rel).write_bytes(buffer.getvalue())
    serial = best_of(2, lambda: find_unreadable_images(root, paths, workers=1, progress=False))
    parallel = best_of(2, lambda: find_unreadable_images(root, paths, workers=workers, progress=False))
    print(f"decode {count:,} 500x375 JPEGs: 1 process {count / serial:.0f} img/s, {workers} processes "
          f"{count / parallel:.0f} img/s -> {serial / parallel:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000, help="paths for the missing-file check")
    parser.add_argument("--decode", type=int, default=2_000, help="images for the decode check")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        bench_missing(Path(scratch), args.images)
        bench_decode(Path(scratch), args.decode, args.workers)


if __name__ == "__main__":
    main()
