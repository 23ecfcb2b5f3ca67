"""``fgood-bench audit-leakage``: copies of test images in the outlier set, the training split and OOD sets.

A WordNet filter (``filter-outliers``) removes outlier concepts, not images: WebVision is crawled
from Flickr and Google, so a CUB or Tsinghua Dogs test image can sit in it under an unrelated
query. This audit compares images by content instead:

* exact duplicates: the same file content (sha256);
* near duplicates: re-encoded, resized or slightly cropped copies, whose 64-bit pHashes
  (:mod:`fgood_bench.audit.hashing`) differ in at most ``threshold`` bits; the benchmark's images
  are also hashed cropped (``CROPS``), so that a cropped copy matches.

Compared: outliers vs ID test and holdout; ID train vs ID test and holdout; each coarse OOD set
vs the ID train and test images. Written to ``--out``: ``audit.json`` (key ``pairs``: every pair
found), ``audit.md`` (counts per pair of sets) and ``contact_sheet.png`` (the closest pairs side by
side, for a person to judge).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import io
import numpy as np

from fgood_bench import __version__
from fgood_bench.audit.hashing import CROPS, FLAT_STD, HashCache, Hashes, hamming, hash_images
from fgood_bench.datasets.base import check_inside_root
from fgood_bench.errors import FgoodError
from fgood_bench.outputs import clear_outputs, json_bytes, run_folder, sha256_file, write_files
from fgood_bench.progress import Stages
from fgood_bench.tools.figures import FigureFormat, every_format, image_figure, render_figure
from fgood_bench.inputs import read_regular
from fgood_bench.interrupt import keep
from fgood_bench.manifests.image_sets import check_set_name, load_benchmark_manifest, ood_set_root, outlier_set_root
from fgood_bench.manifests.manifest import Manifest, named_manifest

# Bits of 64. Re-encoded, 90% resized or 5% cropped copies differ in 0-4 bits, unrelated images in
# about 32 +- 4. With independent bits, 10^10 pairs (WebVision against a test set) times 11 crops give
# ~1 chance match at a threshold of 6, ~40 at 8 and ~1,500 at 10.
DEFAULT_THRESHOLD = 6
SHEET_PAIRS = 24
CHUNK = 2048  # rows of the distance matrix computed at once


@dataclass
class ImageSet:
    name: str
    root: Path
    paths: list[str]
    manifest: Manifest
    split: str
    hashes: Hashes | None = None


@dataclass
class AuditRequest:
    benchmark: Path
    root: Path
    out: Path
    outliers: Path | None = None
    outlier_root: Path | None = None
    ood: list[str] | None = None  # NAME=MANIFEST
    ood_roots: dict[str, Path] | None = None  # NAME -> dataset root (default: root)
    threshold: int = DEFAULT_THRESHOLD
    hash_cache: Path | None = None
    workers: int | None = None
    progress: bool = True
    overwrite: bool = False  # replace an earlier audit in out
    figures: FigureFormat | None = None  # the contact sheet's formats and dpi (None: PNG, one pixel per pixel)


AUDIT_FILES = ("audit.json", "audit.md", *every_format("contact_sheet"))  # the sheet in any --figure-format


def audit_leakage(request: AuditRequest) -> dict:
    """Hash every image of every set, find the pairs, write the reports; returns the audit."""
    if not 0 <= request.threshold < 32:
        raise FgoodError(f"threshold (--threshold) {request.threshold}: must be 0..31 bits (unrelated images differ by about 32 of 64)")
    sets, comparisons = _image_sets(request)
    with run_folder(Path(request.out), "audit-leakage", reuse=request.overwrite, owned=AUDIT_FILES):
        return _audit(request, sets, comparisons)


def _audit(request: AuditRequest, sets: dict, comparisons: list[tuple[str, str]]) -> dict:
    cache = HashCache(request.hash_cache)
    stages = Stages("image set", len(sets), enabled=request.progress)
    for i, image_set in enumerate(sets.values()):
        crops = CROPS if image_set.manifest.kind == "benchmark" else CROPS[:1]  # copies are looked for of benchmark images
        with stages.stage(i, f"{image_set.name}, {len(image_set.paths):,} images"):
            image_set.hashes = hash_images(image_set.root, image_set.paths, cache, request.workers, request.progress,
                                           desc=f"hashing {image_set.name}", crops=crops)
        cache.save()  # after each set: an interrupted audit keeps what it decoded
        if cache.folder is not None:
            keep(cache.folder, f"the image hashes of the finished image sets ({i + 1} of {len(sets)}) are kept in {cache.folder}")
    pairs, counts = [], []
    for a, b in comparisons:
        found = find_pairs(sets[a], sets[b], request.threshold)
        pairs += found
        counts.append({"a": a, "b": b, "images_a": len(sets[a].paths), "images_b": len(sets[b].paths),
                       "exact": sum(p["kind"] == "exact" for p in found), "near": sum(p["kind"] == "near" for p in found)})
    audit = {
        "toolkit": f"fgood-bench {__version__}",
        "method": {
            "exact": "same file content (sha256)",
            "near": f"pHash (64 bits, as imagehash.phash) differing in at most {request.threshold} bits",
            "threshold": request.threshold,
            "flat": f"images whose 32x32 grayscale thumbnail has a std below {FLAT_STD} grey levels are only "
                    "compared exactly (their pHash is noise)",
        },
        "sets": {s.name: {"manifest": s.manifest.name, "manifest_sha256": sha256_file(s.manifest.path),
                          "kind": s.manifest.kind, "dataset": s.manifest.dataset, "dataset_options": s.manifest.dataset_options,
                          "split": s.split, "images": len(s.paths), "flat": int(s.hashes.flat.sum()),
                          "unreadable": len(s.hashes.unreadable)} for s in sets.values()},
        "counts": counts,
        "pairs": pairs,
        "unreadable": [{"set": s.name, "path": s.paths[i], "reason": why} for s in sets.values() for i, why in s.hashes.unreadable],
    }
    files = {"audit.json": json_bytes(audit),
             "audit.md": audit_markdown(audit).encode("utf-8")}
    if pairs:
        files.update(contact_sheet(audit["pairs"], sets, figures=request.figures or FigureFormat()))
    clear_outputs(Path(request.out), AUDIT_FILES)  # a contact sheet of an earlier audit must not stay
    write_files(Path(request.out), files)
    return audit


def _image_sets(request: AuditRequest) -> tuple[dict[str, ImageSet], list[tuple[str, str]]]:
    benchmark = load_benchmark_manifest(request.benchmark, "audit-leakage --benchmark")
    root = benchmark.dataset_root(request.root)
    sets = {name: ImageSet(name, root, benchmark.split(split).paths, benchmark, split)
            for name, split in (("id_train", "id_train"), ("id_test", "id_test"), ("holdout", "ood_test"))}
    comparisons = [("id_train", "id_test"), ("id_train", "holdout")]
    if request.outliers is not None:
        outliers = Manifest.load(request.outliers)
        if outliers.kind == "benchmark":
            raise FgoodError(f"{outliers.path}: a benchmark manifest; --outliers takes a filter-outliers or build-ood-set manifest")
        split = "train" if "train" in outliers.split_names else "ood_test"
        sets["outliers"] = ImageSet("outliers", outlier_set_root(outliers, request.outlier_root, request.root, benchmark.dataset),
                                    outliers.split(split).paths, outliers, split)
        comparisons += [("outliers", "id_test"), ("outliers", "holdout")]
    elif request.outlier_root is not None:
        raise FgoodError("--outlier-root needs --outliers MANIFEST")
    for spec in request.ood or []:
        name, path = named_manifest(spec, or_holdout=False)
        check_set_name(name, "--ood")
        if name in sets:
            raise FgoodError(f"--ood {name!r}: the name is taken (by a benchmark split, the outliers or another --ood)")
        manifest = Manifest.load(path)
        if "ood_test" not in manifest.split_names:
            raise FgoodError(f"{manifest.path}: no ood_test split (--ood takes build-ood-set manifests)")
        root = ood_set_root(name, manifest, request.ood_roots or {}, request.root, benchmark.dataset)
        sets[name] = ImageSet(name, root, manifest.split("ood_test").paths, manifest, "ood_test")
        comparisons += [(name, "id_train"), (name, "id_test")]
    unknown = set(request.ood_roots or {}) - set(sets)
    if unknown:
        raise FgoodError(f"--ood-root {sorted(unknown)[0]}=...: no --ood set of that name")
    for image_set in sets.values():  # as every command that reads images: nothing outside its dataset
        check_inside_root(image_set.root, image_set.paths)
    return sets, comparisons


def _hashable(hashes: Hashes, unreadable: set[int]) -> np.ndarray:
    """Positions of the images a pHash can match: readable and not flat."""
    mask = ~hashes.flat
    mask[list(unreadable)] = False
    return np.flatnonzero(mask)


def find_pairs(a: ImageSet, b: ImageSet, threshold: int) -> list[dict]:
    """Every (a image, b image) with the same content or pHashes at most ``threshold`` bits apart."""
    ha, hb = a.hashes, b.hashes
    bad_a = {i for i, _ in ha.unreadable}
    bad_b = {j for j, _ in hb.unreadable}
    found = {}
    # exact: equal content hashes
    where_b: dict[str, list[int]] = {}
    for j, digest in enumerate(hb.sha256):
        if j not in bad_b:
            where_b.setdefault(digest, []).append(j)
    for i, digest in enumerate(ha.sha256):
        if i not in bad_a:
            for j in where_b.get(digest, []):
                found[i, j] = (0, "exact")
    # near: pHash distance, skipping flat and unreadable images
    keep_a, keep_b = _hashable(ha, bad_a), _hashable(hb, bad_b)
    if keep_a.size and keep_b.size:
        codes_b = hb.phash[keep_b]  # (images, crops)
        for start in range(0, keep_a.size, CHUNK):
            rows = keep_a[start:start + CHUNK]
            codes_a = ha.phash[rows, 0]
            distance = hamming(codes_a, codes_b[:, 0])
            for crop in range(1, codes_b.shape[1]):  # the copy may be a crop of b
                np.minimum(distance, hamming(codes_a, codes_b[:, crop]), out=distance)
            for r, c in zip(*np.nonzero(distance <= threshold)):
                key = (int(rows[r]), int(keep_b[c]))
                found.setdefault(key, (int(distance[r, c]), "near"))
    pairs = [{"a": a.name, "a_path": a.paths[i], "b": b.name, "b_path": b.paths[j], "distance": d, "kind": kind}
             for (i, j), (d, kind) in found.items()]
    return sorted(pairs, key=lambda p: (p["distance"], p["a_path"], p["b_path"]))


def audit_markdown(audit: dict, listed: int = 200) -> str:
    lines = [
        "# Leakage audit",
        "",
        f"Exact: {audit['method']['exact']}. Near: {audit['method']['near']}. See docs/audit.md for how to read this report.",
        "",
        "| set | manifest | split | images | flat | unreadable |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {name} | {s['manifest']} | {s['split']} | {s['images']:,} | {s['flat']:,} | {s['unreadable']:,} |"
              for name, s in audit["sets"].items()]
    lines += ["", "| compared | exact duplicates | near duplicates |", "|---|---|---|"]
    lines += [f"| {c['a']} vs {c['b']} | {c['exact']:,} | {c['near']:,} |" for c in audit["counts"]]
    pairs = audit["pairs"]
    lines += ["", f"## Pairs ({len(pairs):,})", ""]
    if not pairs:
        lines.append("No pair found.")
    else:
        lines += ["| distance | kind | image | copy in |", "|---|---|---|---|"]
        lines += [f"| {p['distance']} | {p['kind']} | {p['a']}: `{p['a_path']}` | {p['b']}: `{p['b_path']}` |"
                  for p in pairs[:listed]]
        if len(pairs) > listed:
            lines.append(f"\n... and {len(pairs) - listed:,} more in audit.json.")
    return "\n".join(lines) + "\n"


def contact_sheet(pairs: list[dict], sets: dict[str, ImageSet], size: int = 128,
                  figures: FigureFormat = FigureFormat()) -> dict[str, bytes]:
    """``contact_sheet.KIND`` -> bytes for each of ``figures``' formats: the closest pairs (at most 24),
    one row each: image, copy, and what they are. The sheet is drawn in pixels and saved at 100 dpi by
    default (the PNG one pixel per pixel); in PDF and SVG it is one embedded image."""
    from PIL import Image, ImageDraw

    shown = sorted(pairs, key=lambda p: (p["distance"], p["a"], p["a_path"], p["b_path"]))[:SHEET_PAIRS]
    text_width, pad = 520, 6
    sheet = Image.new("RGB", (2 * size + text_width + 4 * pad, len(shown) * (size + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for row, pair in enumerate(shown):
        top = pad + row * (size + pad)
        for column, (name, path) in enumerate(((pair["a"], pair["a_path"]), (pair["b"], pair["b_path"]))):
            sheet.paste(_tile(sets[name].root / path, size), (pad + column * (size + pad), top))
        left = 2 * (size + pad) + 2 * pad
        draw.text((left, top + 4), f"{pair['kind']}, distance {pair['distance']}", fill="black")
        draw.text((left, top + 24), f"{pair['a']}: {pair['a_path']}"[:80], fill="black")
        draw.text((left, top + 44), f"{pair['b']}: {pair['b_path']}"[:80], fill="black")
    return render_figure(image_figure(np.asarray(sheet)), "contact_sheet", figures)


def _tile(path: Path, size: int):
    from PIL import Image

    tile = Image.new("RGB", (size, size), (200, 200, 200))
    try:
        with Image.open(io.BytesIO(read_regular(path, "image"))) as image:
            image.draft("RGB", (size, size))
            image = image.convert("RGB")
            image.thumbnail((size, size))
            tile.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    except (OSError, ValueError, SyntaxError, FgoodError):
        pass  # unreadable now: a grey tile
    return tile
