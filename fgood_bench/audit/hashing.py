"""Perceptual hashes of many images, fast: reduced-size grayscale decoding, batched DCT, a content cache.

The hash is pHash as ``imagehash.phash`` computes it (hash size 8, high-frequency factor 4): the
image in grayscale, resized to 32 x 32 (Lanczos), its 2-D DCT-II, the 8 x 8 lowest frequencies,
each bit = coefficient > their median; bits in row-major order, the first bit the most
significant of a ``uint64``. It survives re-encoding and resizing, which a content hash does
not (tests compare bit for bit with imagehash). It does not survive crops well: shifting the
content by 5% changes about 10 of the 64 bits. The images a copy may have been cropped from (the
benchmark's, a few thousand) are therefore also hashed as ``CROPS``: centre crops of 5% and 10%
and 5% off each edge and corner; a pair's distance is the smallest over them.

Speed: hashing is decode-bound. JPEGs are decoded by libjpeg-turbo at the smallest of its 1/8 to
1 scales that keeps 32 px a side, straight into grayscale (:func:`decode_gray`): a WebVision-sized
image needs only the DC coefficients, no IDCT and no colour conversion; what remains is the
entropy decoding. The DCTs of a whole batch are two matrix products. Decoding runs in threads
(the decoders release the GIL). A cache keyed by the sha256 of each file's content spares a
second audit against the same outlier set the decoding.
"""

from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import simplejpeg
from PIL import Image

from fgood_bench.errors import FgoodError
from fgood_bench.inputs import read_regular
from fgood_bench.manifests.files import npz_bytes
from fgood_bench.outputs import atomic_write_bytes
from fgood_bench.progress import progress as progress_bar

HASH_SIZE = 8
DCT_SIZE = HASH_SIZE * 4  # imagehash.phash's highfreq_factor
FLAT_STD = 2.0  # grey levels: below this a thumbnail is (almost) uniform and its pHash is noise
CACHE_VERSION = "phash-v2"  # v2: JPEGs decoded at the smallest scale keeping 32 px (v1: 64 px)
BATCH = 4096  # images decoded, then DCT-hashed together
CHUNK = 32  # images per thread task: one task per image costs as much as a tenth of its decoding
# (left, top, right, bottom) as fractions of the image: the whole image first.
CROPS = (
    (0, 0, 1, 1), (0.025, 0.025, 0.975, 0.975), (0.05, 0.05, 0.95, 0.95),
    (0.05, 0, 1, 1), (0, 0, 0.95, 1), (0, 0.05, 1, 1), (0, 0, 1, 0.95),
    (0.05, 0.05, 1, 1), (0, 0.05, 0.95, 1), (0.05, 0, 1, 0.95), (0, 0, 0.95, 0.95),
)


def _dct_rows(n: int, keep: int) -> np.ndarray:
    """The first ``keep`` rows of the unnormalised DCT-II matrix (scipy.fftpack.dct's, factor 2)."""
    k = np.arange(keep)[:, None]
    x = np.arange(n)[None, :]
    return 2 * np.cos(np.pi * k * (2 * x + 1) / (2 * n))


_DCT = _dct_rows(DCT_SIZE, HASH_SIZE)


def decode_gray(data: bytes) -> Image.Image:
    """The image in grayscale; a JPEG at the smallest libjpeg scale (1/8 to 1) keeping >= 32 px a side.

    JPEGs go through libjpeg-turbo's TurboJPEG API (``simplejpeg``), which gives the same pixels as
    PIL's ``draft`` + ``convert("L")`` with less Python around the decoder (tests compare them; CMYK
    JPEGs, rare, get TurboJPEG's own gray conversion, close to PIL's). What it refuses (damaged or
    truncated files) and other formats go to PIL, which also says what is wrong.
    """
    if data[:2] == b"\xff\xd8":
        try:
            height, width, _, _ = simplejpeg.decode_jpeg_header(data)
            if width * height > 2 * (Image.MAX_IMAGE_PIXELS or float("inf")):  # PIL's decompression-bomb limit
                raise Image.DecompressionBombError(f"{width} x {height} pixels, above PIL's limit of {2 * Image.MAX_IMAGE_PIXELS}")
            pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY", min_height=DCT_SIZE, min_width=DCT_SIZE)
            return Image.fromarray(pixels[:, :, 0])
        except ValueError:
            pass
    with Image.open(io.BytesIO(data)) as image:
        image.draft("L", (DCT_SIZE, DCT_SIZE))
        return image.convert("L")


def thumbnails(data: bytes, crops: tuple = CROPS[:1]) -> np.ndarray:
    """The 32 x 32 grayscale uint8 images the hashes are computed from, one per crop, (len(crops), 32, 32)."""
    gray = decode_gray(data)
    w, h = gray.size
    return np.stack([np.asarray(gray.resize((DCT_SIZE, DCT_SIZE), Image.Resampling.LANCZOS,
                                            box=(left * w, top * h, right * w, bottom * h)))
                     for left, top, right, bottom in crops])


def phash(thumbnails: np.ndarray) -> np.ndarray:
    """uint64 pHash of each (32, 32) grayscale thumbnail of a (N, 32, 32) stack."""
    pixels = np.asarray(thumbnails, np.float64).reshape(-1, DCT_SIZE, DCT_SIZE)
    low = _DCT @ pixels @ _DCT.T  # (N, 8, 8): the lowest frequencies of the 2-D DCT
    flat = low.reshape(len(pixels), -1)
    bits = flat > np.median(flat, axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8").astype(np.uint64).reshape(-1)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise bit differences of two uint64 hash arrays, (len(a), len(b))."""
    return np.bitwise_count(a[:, None] ^ b[None, :])


@dataclass
class Hashes:
    """Per image: content sha256 (hex), pHash, whether it is flat; and the unreadable ones."""

    sha256: list[str]
    phash: np.ndarray  # uint64, (images, crops): column 0 the whole image
    flat: np.ndarray  # bool
    unreadable: list[tuple[int, str]]  # (position, reason)


class HashCache:
    """pHash and flatness by content sha256, in ``folder/phash-v2/*.npz`` shards (one per run that added any)."""

    def __init__(self, folder: Path | None):
        self.folder = Path(folder) / CACHE_VERSION if folder is not None else None
        self.known: dict[bytes, tuple[int, bool]] = {}
        self.new: dict[bytes, tuple[int, bool]] = {}
        if self.folder is None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FgoodError(f"{self.folder}: cannot be used as the hash cache ({err.strerror or err})") from None
        for shard in sorted(p for p in self.folder.glob("*.npz") if not p.name.startswith(".")):  # not a partial
            try:
                with np.load(shard, allow_pickle=False) as content:
                    digests, hashes, flat = content["sha256"], content["phash"], content["flat"]
            except Exception as err:
                raise FgoodError(f"{shard}: damaged hash-cache file ({type(err).__name__}); remove it") from None
            self.known.update(zip(map(bytes, digests), zip(hashes.tolist(), flat.tolist())))

    def get(self, digest: bytes):
        return self.known.get(digest)

    def add(self, digest: bytes, value: tuple[int, bool]) -> None:
        self.new[digest] = value

    def save(self) -> None:
        if self.folder is None or not self.new:
            return
        digests = sorted(self.new)
        arrays = {"sha256": np.frombuffer(b"".join(digests), np.uint8).reshape(-1, 32),
                  "phash": np.array([self.new[d][0] for d in digests], np.uint64),
                  "flat": np.array([self.new[d][1] for d in digests], bool)}
        name = hashlib.sha256(arrays["sha256"].tobytes()).hexdigest()[:20] + ".npz"
        atomic_write_bytes(self.folder / name, npz_bytes(**arrays))
        self.known.update(self.new)
        self.new = {}


def _read_one(path: Path, cache: HashCache, crops: tuple):
    """(sha256 digest, cached (phash, flat) or thumbnails or None, error or None)."""
    try:
        data = read_regular(path, "image")  # a FIFO or a folder is reported, never waited on
    except FgoodError as err:
        return None, None, str(err).removeprefix(f"{path}: ")
    digest = hashlib.sha256(data).digest()
    cached = cache.get(digest) if len(crops) == 1 else None
    if cached is not None:
        return digest, cached, None
    try:
        return digest, thumbnails(data, crops), None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        return digest, None, f"unreadable image ({type(err).__name__}: {err})"


def hash_images(root: Path, paths: Sequence[str], cache: HashCache | None = None, workers: int | None = None,
                progress: bool = False, desc: str = "hashing", crops: tuple = CROPS[:1]) -> Hashes:
    """Content sha256, pHash of each crop and flatness of ``root/path`` for every path, in threads.
    The cache holds whole-image hashes: it serves (and learns from) runs without extra crops."""
    cache = cache or HashCache(None)
    workers = workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    root = Path(root)
    digests, hashes, flat, unreadable = [], np.zeros((len(paths), len(crops)), np.uint64), np.zeros(len(paths), bool), []
    pending: list[tuple[int, bytes, np.ndarray]] = []

    def flush():
        if pending:
            stack = np.stack([thumbs for _, _, thumbs in pending])  # (images, crops, 32, 32)
            values = phash(stack).reshape(len(stack), len(crops))
            flats = stack[:, 0].reshape(len(stack), -1).std(axis=1) < FLAT_STD
            for (position, digest, _), value, is_flat in zip(pending, values, flats.tolist()):
                hashes[position], flat[position] = value, is_flat
                if len(crops) == 1:
                    cache.add(digest, (int(value[0]), is_flat))
            pending.clear()

    starts = range(0, len(paths), BATCH)  # a batch at a time: millions of futures would not fit
    with ThreadPoolExecutor(workers) as pool:  # a bar on a terminal, lines in a log (fgood_bench.progress)
        for start in progress_bar(starts, desc=desc, enabled=progress, unit="batch", items_per_step=BATCH):
            batch = paths[start:start + BATCH]
            chunks = pool.map(lambda chunk: [_read_one(root / rel, cache, crops) for rel in chunk],
                              [batch[i:i + CHUNK] for i in range(0, len(batch), CHUNK)])
            results = (result for chunk in chunks for result in chunk)
            for position, (digest, value, error) in enumerate(results, start):
                digests.append(digest.hex() if digest is not None else "")
                if error is not None:
                    unreadable.append((position, error))
                elif isinstance(value, tuple):
                    hashes[position], flat[position] = value
                else:
                    pending.append((position, digest, value))
            flush()
    return Hashes(digests, hashes, flat, unreadable)
