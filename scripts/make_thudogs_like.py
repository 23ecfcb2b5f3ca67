"""Write a Tsinghua Dogs download of the real size and layout, with generated photo-like JPEGs.

The split lists are the official ones (``tests/data/reference-meta/tsinghua_dogs/{train,validation}.lst``:
65,228 + 5,200 lines, 130 breeds, UTF-8 BOM, CRLF, ``.//<count>-n<id>-<Breed>/<image>``, ``.jpg`` and
``.jpeg`` mixed, one folder name with a space); every listed image is written under ``low-resolution/`` as a
JPEG of 500 x 375 (one in four 375 x 500, portrait), the size of the low-resolution download, with
``natural_jpeg``'s content (scripts/bench_pipeline.py: a smooth colour field, texture and grain, so that
decoding costs what a photo's does). Layout written (what ``fgood_bench.datasets.thudogs`` reads)::

    OUT/low-resolution/<count>-n<id>-<Breed>/<image>.jpg|.jpeg
    OUT/TrainAndValList/train.lst  OUT/TrainAndValList/validation.lst

``--scale F`` keeps the first max(1, round(F * n)) images of each breed in each list (every breed stays in
both splits), so ``--scale 0.002`` writes 130 + 130 images. ``--distinct N`` generates N different images
and writes them in turn (the files' bytes repeat, decoding them costs the same): the full size takes
seconds of generation instead of about 70,428 x 30 ms of one core. The work runs on a process pool over
all CPUs (``--workers``).

Usage: python scripts/make_thudogs_like.py --out DIR [--scale F] [--size 500x375] [--distinct N] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_pipeline import natural_jpeg  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LISTS = REPO / "tests" / "data" / "reference-meta" / "tsinghua_dogs"
LIST_FILES = {"train": "train.lst", "val": "validation.lst"}
IMAGES = "low-resolution"
BOM = b"\xef\xbb\xbf"


def read_list(path: Path) -> list[str]:
    """The lines of an official ``.lst`` (BOM and CRLF removed)."""
    return path.read_bytes().decode("utf-8-sig").splitlines()


def scaled(lines: list[str], scale: float) -> list[str]:
    """The first max(1, round(scale * n)) lines of each breed folder, in the list's order."""
    by_folder: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        by_folder[line.lstrip("./").split("/")[0]].append(line)
    keep = {folder: set(entries[: max(1, round(scale * len(entries)))]) for folder, entries in by_folder.items()}
    return [line for line in lines if line in keep[line.lstrip("./").split("/")[0]]]


def image_size(k: int, width: int, height: int) -> tuple[int, int]:
    return (height, width) if k % 4 == 0 else (width, height)  # one in four portrait


def _write_generated(task: tuple[str, int, int, int]) -> int:
    path, width, height, seed = task
    content = natural_jpeg(width, height, seed)
    Path(path).write_bytes(content)
    return len(content)


def _generate(task: tuple[int, int, int]) -> bytes:
    width, height, seed = task
    return natural_jpeg(width, height, seed)


def make(out: Path, scale: float = 1.0, size: tuple[int, int] = (500, 375), distinct: int = 0,
         workers: int | None = None, lists: Path = LISTS) -> dict:
    """Write the download into ``out``; returns the counts, bytes and seconds."""
    start = time.perf_counter()
    workers = workers or len(os.sched_getaffinity(0))
    entries = {split: scaled(read_list(lists / name), scale) for split, name in LIST_FILES.items()}
    (out / "TrainAndValList").mkdir(parents=True, exist_ok=True)
    for split, name in LIST_FILES.items():  # as the official files: BOM, CRLF, a final line end
        (out / "TrainAndValList" / name).write_bytes(BOM + "".join(f"{line}\r\n" for line in entries[split]).encode())
    relpaths = [line.lstrip("./") for split in LIST_FILES for line in entries[split]]
    for folder in sorted({p.split("/")[0] for p in relpaths}):
        (out / IMAGES / folder).mkdir(parents=True, exist_ok=True)
    width, height = size
    context = get_context("fork" if sys.platform.startswith("linux") else "spawn")
    if distinct <= 0:  # every image its own content
        tasks = [(str(out / IMAGES / p), *image_size(k, width, height), k) for k, p in enumerate(relpaths)]
        with context.Pool(workers) as pool:
            written = sum(pool.imap_unordered(_write_generated, tasks, chunksize=64))
    else:
        count = min(distinct, len(relpaths))
        with context.Pool(workers) as pool:
            contents = pool.map(_generate, [(*image_size(k, width, height), k) for k in range(count)], chunksize=16)

        def write(k: int) -> int:
            content = contents[k % count]
            (out / IMAGES / relpaths[k]).write_bytes(content)
            return len(content)

        with ThreadPoolExecutor(workers) as threads:  # file writes release the GIL
            written = sum(threads.map(write, range(len(relpaths)), chunksize=256))
    return {"train": len(entries["train"]), "val": len(entries["val"]), "bytes": written,
            "seconds": time.perf_counter() - start, "workers": workers}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder to write the download into")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of each breed's images to write (default 1: all)")
    parser.add_argument("--size", default="500x375", help="landscape JPEG size WxH (default 500x375; one in four portrait)")
    parser.add_argument("--distinct", type=int, default=0, help="different images to generate and repeat (default 0: all different)")
    parser.add_argument("--workers", type=int, help="processes (default: all CPUs this process may use)")
    parser.add_argument("--lists", type=Path, default=LISTS, help="folder of the official train.lst and validation.lst")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error(f"--scale must be in (0, 1], got {args.scale}")
    width, height = map(int, args.size.lower().split("x"))
    stats = make(args.out, args.scale, (width, height), args.distinct, args.workers, args.lists)
    print(f"wrote {stats['train']:,} train + {stats['val']:,} val JPEGs ({stats['bytes'] / 1e9:.2f} GB) to {args.out} "
          f"in {stats['seconds']:.1f} s on {stats['workers']} processes")


if __name__ == "__main__":
    main()
