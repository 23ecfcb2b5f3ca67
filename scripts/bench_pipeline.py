"""Evaluation transform speed: fgood-bench's JPEG -> 448x448 uint8 tensor against the MixOE reference.

The reference (MixOE's test transform) is PIL ``Resize((512, 512))`` -> ``CenterCrop(448)`` ->
``ToTensor`` -> ``Normalize`` on ``Image.open(...).convert("RGB")``. Ours decodes with
libjpeg-turbo (reduced-scale for big JPEGs), resizes with torchvision's uint8 kernel, crops and
stops at uint8; normalisation happens batched on the GPU. Both run in this process on the same generated JPEGs, one core. Reported: images/s of
each, their ratio (target >= 2.5x) and the mean absolute pixel difference of the outputs before
normalisation (target < 1/255).

Usage: python scripts/bench_pipeline.py [--images N] [--size 500x375]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from fgood_bench.tools.images import IMAGENET_MEAN, IMAGENET_STD, Geometry, load_image


def natural_jpeg(width: int, height: int, seed: int) -> bytes:
    """A photo-like JPEG: smooth colour field + mid-frequency texture + grain (not flat, not noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    field = np.stack([np.sin(2 * np.pi * (x * rng.uniform(0.5, 2) + y * rng.uniform(0.5, 2)) + rng.uniform(0, 6)) for _ in range(3)], -1)
    texture = np.sin(2 * np.pi * 25 * x * rng.uniform(0.8, 1.2))[..., None] * np.cos(2 * np.pi * 19 * y)[..., None]
    pixels = 128 + 80 * field + 25 * texture + rng.normal(0, 6, (height, width, 3))
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", default="500x375", help="source JPEG size, WxH (CUB-like by default)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    torch.set_num_threads(1)
    reference = transforms.Compose([
        transforms.Resize((512, 512)), transforms.CenterCrop(448), transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    to_unit = transforms.Compose([transforms.Resize((512, 512)), transforms.CenterCrop(448), transforms.ToTensor()])
    geometry = Geometry()
    with tempfile.TemporaryDirectory() as scratch:
        files = []
        for k in range(args.images):
            path = Path(scratch) / f"{k}.jpg"
            path.write_bytes(natural_jpeg(width if k % 4 else height, height if k % 4 else width, k))  # 1 in 4 portrait
            files.append(path)

        def run_reference():
            for path in files:
                reference(Image.open(path).convert("RGB"))

        def run_ours():
            for path in files:
                load_image(path, geometry)

        timings = {}
        for name, fn in (("reference", run_reference), ("ours", run_ours)):
            fn()  # warm-up
            timings[name] = min(_time(fn) for _ in range(args.repeats))
        diffs = [np.abs(load_image(p, geometry).numpy() / 255.0 - to_unit(Image.open(p).convert("RGB")).numpy()).mean()
                 for p in files[:50]]
    ref_rate, our_rate = args.images / timings["reference"], args.images / timings["ours"]
    print(f"{args.images} JPEGs of {width}x{height}, 1 core")
    print(f"reference Resize(512)+CenterCrop(448)+ToTensor+Normalize: {ref_rate:7.1f} img/s")
    print(f"fgood-bench decode + uint8 resize + crop:                  {our_rate:7.1f} img/s")
    print(f"speed-up: {our_rate / ref_rate:.2f}x (target >= 2.5x)")
    print(f"mean |difference|: {np.mean(diffs) * 255:.3f}/255 (target < 1/255)")


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
