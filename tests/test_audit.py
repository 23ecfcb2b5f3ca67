"""audit-leakage: planted copies (byte-identical, re-encoded, resized, cropped) of holdout images in a
WebVision outlier set are found, a clean set gives no pair, filter-outliers removes exactly them."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REFERENCE, run_cli, write_predictions
from fgood_bench.audit import hashing
from fgood_bench.audit.hashing import CROPS, HashCache, hash_images, phash, thumbnails
from fgood_bench.datasets import synthetic
from fgood_bench.manifests.manifest import Manifest


def photo(seed: int, size=(160, 120)) -> bytes:
    """A distinct JPEG with some structure: discs of random colours over a gradient, with noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size[1], 0:size[0]] / max(size)
    angle = rng.random() * np.pi
    pixels = np.zeros((size[1], size[0], 3)) + rng.integers(0, 256, 3) * (np.cos(angle) * x + np.sin(angle) * y)[..., None]
    for _ in range(12):
        cx, cy, r = rng.random(3) * [1.3, 1.0, 0.3] + [0, 0, 0.03]
        pixels = np.where(((x - cx) ** 2 + (y - cy) ** 2 < r ** 2)[..., None], rng.integers(0, 256, 3), pixels)
    pixels += rng.normal(0, 6, pixels.shape)
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def reencode(data: bytes, quality=90, scale=1.0, crop=0.0) -> bytes:
    image = Image.open(io.BytesIO(data))
    if crop:  # cut ``crop`` of the width and of the height off the top-left corner
        image = image.crop((round(image.width * crop), round(image.height * crop), image.width, image.height))
    if scale != 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 12-class CUB layout with distinct images, its K=8 benchmark, and WebVision with 4 planted copies."""
    base = tmp_path_factory.mktemp("audit")
    folders = [f"{c:03d}.Bird_{c}" for c in range(1, 13)]
    images = [(f"{folder}/Bird_{c}_{k:04d}.jpg", c, int(k < 3)) for c, folder in enumerate(folders, 1) for k in range(5)]
    birds = synthetic.write_cub(base / "birds", folders, images)
    for seed, (relpath, _, _) in enumerate(images):
        (birds / "images" / relpath).unlink()
        (birds / "images" / relpath).write_bytes(photo(seed))
    write_predictions(base / "preds.npz", birds, {c: 0.9 - 0.04 * c for c in range(12)})
    assert run_quiet("build-splits", "bird", "--root", birds, "--out", base / "out", "--num-id", "8",
                     "--predictions", base / "preds.npz") == 0
    holdout = Manifest.load(base / "out" / "bird").split("ood_test").paths

    synsets = [tuple(line.split(" ", 1)) for line in (REFERENCE / "imagenet" / "synset_words.txt").read_text().splitlines() if line]
    index = {wnid: i for i, (wnid, _) in enumerate(synsets)}
    concepts = ["n01440764", "n04552348", "n03000684"]  # tench, warplane, chain saw: none excluded for bird
    train = {"flickr": [(f"flickr/q{q:04d}/flickr_{q}_{k}.jpg", index[concepts[q - 1]]) for q in (1, 2, 3) for k in range(8)]}
    clean = synthetic.write_webvision(base / "clean", synsets, train, None)
    for seed, (relpath, _) in enumerate(train["flickr"], 1000):
        (clean / relpath).unlink()
        (clean / relpath).write_bytes(photo(seed))
    planted_root = synthetic.write_webvision(base / "planted", synsets, train, None)
    for relpath, _ in train["flickr"]:
        (planted_root / relpath).unlink()
        (planted_root / relpath).write_bytes((clean / relpath).read_bytes())
    copies = {  # outlier image -> the holdout image it copies
        "flickr/q0001/flickr_1_2.jpg": ("byte-identical", (birds / holdout[0]).read_bytes()),
        "flickr/q0002/flickr_2_5.jpg": ("quality 70", reencode((birds / holdout[1]).read_bytes(), quality=70)),
        "flickr/q0003/flickr_3_0.jpg": ("90% resize", reencode((birds / holdout[2]).read_bytes(), scale=0.9)),
        "flickr/q0003/flickr_3_7.jpg": ("5% crop", reencode((birds / holdout[3]).read_bytes(), crop=0.05)),
    }
    for relpath, (_, content) in copies.items():
        (planted_root / relpath).write_bytes(content)
    for name, root in (("clean", clean), ("planted", planted_root)):
        assert run_quiet("filter-outliers", "bird", "--source", "webvision", "--root", root, "--out", base / name,
                         "--name", "webvision-bird") == 0
    planted = {relpath: holdout[i] for i, relpath in enumerate(copies)}
    return {"base": base, "birds": birds, "clean": clean, "planted_root": planted_root, "planted": planted}


def run_quiet(*args) -> int:
    from fgood_bench.cli import main

    return main([str(a) for a in args])


def audit_args(world, which: str, out: Path, *extra):
    base = world["base"]
    root = world["clean"] if which == "clean" else world["planted_root"]
    return ["audit-leakage", "--benchmark", base / "out" / "bird", "--root", world["birds"], "--outliers",
            base / which / "webvision-bird", "--outlier-root", root, "--out", out, "--workers", "2", *extra]


def test_planted_copies_are_found_and_filtered_out(world, tmp_path, capsys):
    status, out, err = run_cli(*audit_args(world, "planted", tmp_path / "audit", "--hash-cache", tmp_path / "cache"), capsys=capsys)
    assert status == 0, err
    audit = json.loads((tmp_path / "audit" / "audit.json").read_text())
    found = {p["a_path"]: p for p in audit["pairs"]}
    assert {p["a"] for p in audit["pairs"]} == {"outliers"} and {p["b"] for p in audit["pairs"]} == {"holdout"}
    assert {path: p["b_path"] for path, p in found.items()} == world["planted"]
    assert found["flickr/q0001/flickr_1_2.jpg"]["kind"] == "exact" and found["flickr/q0001/flickr_1_2.jpg"]["distance"] == 0
    assert all(p["kind"] == "near" and p["distance"] <= 6 for path, p in found.items() if path != "flickr/q0001/flickr_1_2.jpg")
    counts = {(c["a"], c["b"]): (c["exact"], c["near"]) for c in audit["counts"]}
    assert counts == {("id_train", "id_test"): (0, 0), ("id_train", "holdout"): (0, 0), ("outliers", "id_test"): (0, 0),
                      ("outliers", "holdout"): (1, 3)}
    assert audit["sets"]["outliers"]["images"] == 24 and audit["sets"]["holdout"]["images"] == 8
    assert "| outliers vs holdout | 1 | 3 |" in (tmp_path / "audit" / "audit.md").read_text()
    sheet = Image.open(tmp_path / "audit" / "contact_sheet.png")
    assert sheet.height > 4 * 128
    assert "outliers vs holdout: 1 exact, 3 near duplicates" in out

    # The same audit again: identical report, whole-image hashes from the cache.
    assert run_cli(*audit_args(world, "planted", tmp_path / "again", "--hash-cache", tmp_path / "cache"), capsys=capsys)[0] == 0
    assert (tmp_path / "again" / "audit.json").read_bytes() == (tmp_path / "audit" / "audit.json").read_bytes()
    assert len(list((tmp_path / "cache" / "phash-v2").glob("*.npz"))) == 1

    base = world["base"]
    status, out, err = run_cli("filter-outliers", "bird", "--source", "webvision", "--root", world["planted_root"],
                               "--out", tmp_path / "filtered", "--exclude-duplicates-of", tmp_path / "audit" / "audit.json",
                               capsys=capsys)
    assert status == 0, err
    manifest = Manifest.load(out.strip())
    before = Manifest.load(base / "planted" / "webvision-bird").split("train").paths
    assert sorted(set(before) - set(manifest.split("train").paths)) == sorted(world["planted"])
    assert manifest.data["exclusion"]["duplicates"]["images_removed"] == 4
    assert manifest.data["exclusion"]["duplicates"]["paths"] == sorted(world["planted"])
    # counted apart from the concepts' removals (no bird concept has an image here): not "4 images of 59 concepts"
    assert manifest.data["exclusion"]["images_removed"] == 0 and manifest.data["exclusion"]["images_kept"] == 20
    report = (tmp_path / "filtered" / "webvision-bird" / "report.md").read_text()
    assert "removed 0 images of 59 excluded concepts and 4 audited copies of test images (listed below)." in report
    assert "`flickr/q0003/flickr_3_7.jpg`" in report
    assert "removed 0 images of 0 concepts (59 concepts excluded" in err
    assert "removed 4 more images that audit-leakage found to be copies of test images" in err


def test_a_clean_set_gives_no_pair(world, tmp_path, capsys):
    status, _, err = run_cli(*audit_args(world, "clean", tmp_path / "audit"), capsys=capsys)
    assert status == 0, err
    audit = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert audit["pairs"] == [] and all(c["exact"] == c["near"] == 0 for c in audit["counts"])
    assert not (tmp_path / "audit" / "contact_sheet.png").exists() and "No pair found." in (tmp_path / "audit" / "audit.md").read_text()


def test_coarse_ood_set_with_an_id_image(world, tmp_path, capsys):
    base = world["base"]
    train = Manifest.load(base / "out" / "bird").split("id_train").paths
    folder = synthetic.write_imagefolder(tmp_path / "ood", {"texture": ["a.jpg", "b.jpg", "c.jpg"]})
    for seed, name in enumerate(("a.jpg", "b.jpg"), 5000):
        (folder / "texture" / name).write_bytes(photo(seed))
    (folder / "texture" / "c.jpg").write_bytes(reencode((world["birds"] / train[5]).read_bytes(), quality=75))
    assert run_quiet("build-ood-set", "imagefolder", "--root", folder, "--out", tmp_path / "sets", "--name", "tex") == 0
    status, _, err = run_cli("audit-leakage", "--benchmark", base / "out" / "bird", "--root", world["birds"],
                             "--ood", f"tex={tmp_path / 'sets' / 'tex'}", "--ood-root", f"tex={folder}", "--out", tmp_path / "a",
                             capsys=capsys)
    assert status == 0, err
    pairs = json.loads((tmp_path / "a" / "audit.json").read_text())["pairs"]
    assert [(p["a"], p["a_path"], p["b"], p["b_path"]) for p in pairs] == [("tex", "texture/c.jpg", "id_train", train[5])]


def test_bad_inputs_are_one_line(world, tmp_path, capsys):
    base = world["base"]
    status, _, err = run_cli("audit-leakage", "--benchmark", base / "planted" / "webvision-bird", "--root", world["birds"],
                             "--out", tmp_path / "a", capsys=capsys)
    assert status == 2 and "an outliers manifest; audit-leakage --benchmark needs a benchmark (build-splits)" in err and err.count("\n") == 1
    status, _, err = run_cli("audit-leakage", "--benchmark", base / "out" / "bird", "--root", world["birds"], "--ood", "x",
                             "--out", tmp_path / "a", capsys=capsys)
    assert status == 2 and "expected NAME=MANIFEST" in err
    assert not (tmp_path / "a").exists()
    (tmp_path / "other.json").write_text(json.dumps({"pairs": [], "sets": {"id_test": {}}}))
    status, _, err = run_cli("filter-outliers", "bird", "--source", "webvision", "--root", world["clean"], "--out", tmp_path / "f",
                             "--exclude-duplicates-of", tmp_path / "other.json", capsys=capsys)
    assert status == 2 and "did not check an outlier set" in err


def test_phash_is_imagehash_phash(tmp_path):
    imagehash = pytest.importorskip("imagehash")
    rng = np.random.default_rng(0)
    for k in range(20):
        pixels = rng.integers(0, 256, (40 + k, 50, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "x.png")  # PNG: no reduced-scale decoding, the same input as imagehash's
        ours = int(phash(thumbnails((tmp_path / "x.png").read_bytes()))[0])
        reference = imagehash.phash(Image.open(tmp_path / "x.png")).hash.reshape(-1)
        assert [(ours >> (63 - bit)) & 1 for bit in range(64)] == reference.astype(int).tolist()


@pytest.mark.parametrize("kind", ["420", "444", "progressive", "gray", "small", "odd", "cmyk"])
def test_turbojpeg_decoding_equals_pil_draft(kind):
    """decode_gray's TurboJPEG path gives PIL's reduced-scale grayscale pixels (draft + convert("L"))."""
    image = Image.open(io.BytesIO(photo(7, size={"small": (24, 20), "odd": (301, 203)}.get(kind, (341, 256)))))
    options = {"420": {}, "444": {"subsampling": 0}, "progressive": {"progressive": True}}.get(kind, {})
    if kind == "gray":
        image = image.convert("L")
    if kind == "cmyk":
        image = image.convert("CMYK")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, **options)
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as pil:
        pil.draft("L", (hashing.DCT_SIZE, hashing.DCT_SIZE))
        expected = np.asarray(pil.convert("L"))
    ours = np.asarray(hashing.decode_gray(data))
    assert ours.shape == expected.shape and min(ours.shape) >= min(hashing.DCT_SIZE, *image.size[::-1])
    if kind == "cmyk":  # TurboJPEG and PIL convert CMYK to gray with different formulas
        assert np.abs(ours.astype(int) - expected).mean() < 24
    else:
        assert np.array_equal(ours, expected)


def test_truncated_and_oversized_jpegs_are_unreadable(tmp_path, monkeypatch):
    data = photo(3, size=(341, 256))
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "whole.jpg").write_bytes(data)
    truncated = hash_images(tmp_path, ["cut.jpg", "whole.jpg"], workers=1)
    assert [p for p, _ in truncated.unreadable] == [0] and "truncated" in truncated.unreadable[0][1]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 341 * 256 // 3)  # PIL's decompression-bomb limit, lowered
    oversized = hash_images(tmp_path, ["whole.jpg"], workers=1)
    assert len(oversized.unreadable) == 1 and "DecompressionBombError" in oversized.unreadable[0][1]


def test_hash_cache_ignores_a_partial_file_a_killed_run_left(tmp_path):
    (tmp_path / "0.jpg").write_bytes(photo(0))
    cache = HashCache(tmp_path / "cache")
    first = hash_images(tmp_path, ["0.jpg"], cache)
    cache.save()
    (tmp_path / "cache" / hashing.CACHE_VERSION / ".partial-killed.npz").write_bytes(b"PK\x03\x04 cut short")
    again = HashCache(tmp_path / "cache")  # loads the saved shard, skips the partial one
    assert again.get(bytes.fromhex(first.sha256[0])) == (int(first.phash[0, 0]), bool(first.flat[0]))


def test_hashes_cache_and_unreadable_images(tmp_path, monkeypatch):
    for k in range(3):
        (tmp_path / f"{k}.jpg").write_bytes(photo(k))
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    cache = HashCache(tmp_path / "cache")
    first = hash_images(tmp_path, ["0.jpg", "1.jpg", "bad.jpg", "2.jpg"], cache)
    cache.save()
    assert [p for p, _ in first.unreadable] == [2] and "unreadable image" in first.unreadable[0][1]
    cropped = hash_images(tmp_path, ["0.jpg"], HashCache(None), crops=CROPS)
    assert cropped.phash.shape == (1, len(CROPS)) and cropped.phash[0, 0] == first.phash[0, 0]
    def no_decoding(*args):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(hashing, "thumbnails", no_decoding)
    again = hash_images(tmp_path, ["2.jpg", "0.jpg"], HashCache(tmp_path / "cache"))
    assert again.phash[:, 0].tolist() == [first.phash[3, 0], first.phash[0, 0]]
