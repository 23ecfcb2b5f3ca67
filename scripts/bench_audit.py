"""Hashing speed of audit-leakage against PIL open + resize + imagehash, and the time for WebVision.

Writes IMAGES WebVision-sized JPEGs (the resized WebVision 1.0 release: shorter side 256 px,
here 341 x 256, quality 90, photo-like structure), then measures in the same run, on one core:

* fgood-bench: ``fgood_bench.audit.hashing.hash_images`` (sha256 of the file, reduced-scale
  grayscale decode, batched DCT), one thread;
* baseline: ``imagehash.phash(PIL.Image.open(path))`` (full decode, grayscale, Lanczos resize,
  scipy DCT), the usual way to compute the same hash;

and the agreement of the two hashes (bits that differ). Then all cores with fgood-bench, and the
time for 2.4 M images extrapolated from the measured rate (the issue asked for a 50k sample; 2k
is the default here because the CPU is shared; --images 50000 measures that). Goal: >= 3x the baseline per core.

Usage: python scripts/bench_audit.py [--images 2000] [--rounds 3]   (pip install imagehash for the baseline)
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

from fgood_bench.audit.hashing import hash_images

WEBVISION_TRAIN = 2_400_000


def write_images(folder: Path, count: int, size=(341, 256)) -> list[str]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size[1], 0:size[0]] / max(size)
    paths = []
    for i in range(count):
        angle = rng.random() * np.pi
        pixels = np.zeros((size[1], size[0], 3)) + rng.integers(0, 256, 3) * (np.cos(angle) * x + np.sin(angle) * y)[..., None]
        for _ in range(12):
            cx, cy, r = rng.random(3) * [1.3, 1.0, 0.3] + [0, 0, 0.03]
            pixels = np.where(((x - cx) ** 2 + (y - cy) ** 2 < r ** 2)[..., None], rng.integers(0, 256, 3), pixels)
        pixels += rng.normal(0, 8, pixels.shape)
        buffer = io.BytesIO()
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
        paths.append(f"{i:06d}.jpg")
        (folder / paths[-1]).write_bytes(buffer.getvalue())
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="images to write and hash (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds, best kept (default 3)")
    args = parser.parse_args()
    import imagehash

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="fgood-bench-audit-") as scratch:
        folder = Path(scratch)
        paths = write_images(folder, args.images)
        for path in paths:  # warm the page cache for both
            (folder / path).read_bytes()

        # Alternating rounds, best of each: the machine may be shared, and contention comes and goes.
        ours_rate = base_rate = all_rate = 0.0
        for _ in range(args.rounds):
            start = time.perf_counter()
            ours = hash_images(folder, paths, workers=1)
            ours_rate = max(ours_rate, len(paths) / (time.perf_counter() - start))
            start = time.perf_counter()
            reference = [imagehash.phash(Image.open(folder / path)) for path in paths]
            base_rate = max(base_rate, len(paths) / (time.perf_counter() - start))
            start = time.perf_counter()
            hash_images(folder, paths, workers=cores)
            all_rate = max(all_rate, len(paths) / (time.perf_counter() - start))

    packed = np.array([int(str(h), 16) for h in reference], np.uint64)
    differ = np.bitwise_count(packed ^ ours.phash[:, 0])
    print(f"{len(paths):,} WebVision-sized images (341 x 256 JPEG), {cores} CPU cores")
    print(f"fgood-bench, 1 core:               {ours_rate:8.1f} images/s")
    print(f"PIL + imagehash.phash, 1 core:     {base_rate:8.1f} images/s")
    print(f"speed-up per core:                 {ours_rate / base_rate:8.1f}x (goal >= 3x)")
    print(f"fgood-bench, {cores} cores:              {all_rate:8.1f} images/s")
    print(f"hash bits differing from imagehash: median {np.median(differ):.0f}, 99th percentile {np.percentile(differ, 99):.0f} of 64 "
          "(reduced-scale decoding; copies are matched at <= 6)")
    for n in (cores, 16):
        print(f"2.4 M images on {n:2d} cores: {WEBVISION_TRAIN / (ours_rate * n) / 60:6.1f} min "
              f"(baseline {WEBVISION_TRAIN / (base_rate * n) / 60:6.1f} min), assuming linear scaling from 1 core")


if __name__ == "__main__":
    main()
