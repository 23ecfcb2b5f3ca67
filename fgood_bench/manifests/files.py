"""Byte-exact manifest files: split lists, deterministic ``.npz``, class lists.

Everything a manifest folder holds is rendered to bytes first; :mod:`fgood_bench.outputs` writes
them (atomically, into folders the command created). Its helpers are re-exported here under
their old names for code that imports them from this module.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np

from fgood_bench.errors import FgoodError
from fgood_bench.outputs import (  # noqa: F401  (the old names of these helpers)
    ensure_output_folder, sha256_bytes, sha256_file, sha256_files, write_folder,
)

SPLIT_HEADER = "path\tlabel\tclass_name"
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # zip entries carry a timestamp: pin it


def split_file_bytes(rows: Iterable[tuple[str, int, str]], hashes: Iterable[str] | None = None) -> bytes:
    """A split file: a header, then ``path<TAB>label<TAB>class name[<TAB>sha256]`` per image, LF ends.
    Each path once: a row twice (an image counted twice, or under two labels) is refused."""
    lines = [SPLIT_HEADER + ("\tsha256" if hashes is not None else "")]
    hashes = iter(hashes) if hashes is not None else None
    line_of: dict[str, int] = {}
    for lineno, (path, label, name) in enumerate(rows, 2):
        if any(c in path for c in "\t\n\r"):
            raise FgoodError(f"{path!r}: image path holds a tab or line break, which a split file cannot store")
        if any(c in name for c in "\t\n\r"):
            raise FgoodError(f"class name {name!r}: holds a tab or line break, which a split file cannot store")
        first = line_of.setdefault(path, lineno)
        if first != lineno:
            raise FgoodError(f"{path}: on lines {first} and {lineno} of one split file: each image once per split")
        lines.append(f"{path}\t{label}\t{name}" + (f"\t{next(hashes)}" if hashes is not None else ""))
    return ("\n".join(lines) + "\n").encode("utf-8")


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """``numpy.savez`` output with fixed timestamps, so equal arrays give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_ZIP_TIME)
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def class_names_in_file(path: Path) -> list[str]:
    """The ``wnid`` column of a TSV with a header (like manifests/inet/*.tsv), else one name a line."""
    try:
        lines = [line for line in Path(path).read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except OSError as err:
        raise FgoodError(f"{path}: cannot be read ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise FgoodError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    header = lines[0].split("\t") if lines else []
    return [line.split("\t")[header.index("wnid")] for line in lines[1:]] if "wnid" in header else [l.strip() for l in lines]
