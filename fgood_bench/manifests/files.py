"""Byte-exact, atomic output files: split lists, checksums, deterministic ``.npz``.

Everything a manifest folder holds is rendered to bytes first and written into a fresh sibling
folder that replaces the target only once complete: an interrupted or failed build leaves the
previous output (or nothing) behind, never half a benchmark.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from fgood_bench.errors import FgoodError

SPLIT_HEADER = "path\tlabel\tclass_name"
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # zip entries carry a timestamp: pin it


def split_file_bytes(rows: Iterable[tuple[str, int, str]], hashes: Iterable[str] | None = None) -> bytes:
    """A split file: a header, then ``path<TAB>label<TAB>class name[<TAB>sha256]`` per image, LF ends."""
    lines = [SPLIT_HEADER + ("\tsha256" if hashes is not None else "")]
    hashes = iter(hashes) if hashes is not None else None
    for path, label, name in rows:
        if any(c in path or c in name for c in "\t\n\r"):
            raise FgoodError(f"{path!r}: tabs and line breaks cannot appear in a split file")
        lines.append(f"{path}\t{label}\t{name}" + (f"\t{next(hashes)}" if hashes is not None else ""))
    return ("\n".join(lines) + "\n").encode("utf-8")


def sha256_files(root: Path, relpaths: list[str], workers: int = 8) -> list[str]:
    """sha256 of many files, read in parallel threads (hashing releases the GIL)."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda rel: sha256_file(root / rel), relpaths))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """``numpy.savez`` output with fixed timestamps, so equal arrays give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_ZIP_TIME)
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def ensure_output_folder(folder: Path) -> None:
    """Create ``folder`` (and parents) now, so that a bad --out fails before any long work."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FgoodError(f"{folder}: cannot be used as the output folder ({err.strerror or err})") from None
    if not os.access(folder, os.W_OK):
        raise FgoodError(f"{folder}: output folder is not writable")


def write_folder(target: Path, files: dict[str, bytes], populate: Callable[[Path], None] | None = None) -> None:
    """Create ``target`` holding exactly ``files`` (relative path -> content), atomically.

    The files go to a sibling staging folder that then replaces ``target``; on any failure the
    staging folder is removed and an existing ``target`` is left as it was. ``populate`` may add
    what is not bytes (links) to the staging folder before the swap.
    """
    ensure_output_folder(target.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        for relpath, content in files.items():
            path = staging / relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        if populate is not None:
            populate(staging)
        os.chmod(staging, 0o755)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            target.replace(retired / target.name)
            try:
                staging.replace(target)
            except OSError:
                (retired / target.name).replace(target)  # put the previous output back
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.replace(target)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise FgoodError(f"{target}: cannot be written ({err.strerror or err})") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def class_names_in_file(path: Path) -> list[str]:
    """The ``wnid`` column of a TSV with a header (like manifests/inet/*.tsv), else one name a line."""
    try:
        lines = [line for line in Path(path).read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except OSError as err:
        raise FgoodError(f"{path}: cannot be read ({err.strerror})") from None
    header = lines[0].split("\t") if lines else []
    return [line.split("\t")[header.index("wnid")] for line in lines[1:]] if "wnid" in header else [l.strip() for l in lines]
