"""One image once: the shared check every adapter's rows and classes pass through.

Official metadata is trusted nowhere else: a path listed twice in a split, a path in two splits
(the official splits of every adapter are disjoint: no adapter has a ``trainval`` or ``all`` view
beside its parts), a path under two labels or two classes with one name would reach the benchmarks
(a test image trained on, a row counted twice). :meth:`DatasetAdapter.load` calls
:func:`check_rows` and :func:`check_class_names` on whatever the adapter produced; the manifests
(split files, ``verify``) use :func:`first_repeat` the same way.

A violation is one line naming the metadata file and both entries (line numbers, or ``.mat``
indices): adapters give each split an *origin* (row -> file and position) that is called only to
word the error, so the check itself is a hash of the path column (vectorised with Arrow).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fgood_bench.errors import DatasetError

# row index within a split (or class index) -> (metadata file relative to the root, "line 12" / "trnid[3]")
Origin = Callable[[int], tuple[str, str]]

# characters a split file cannot hold (its fields are tab-separated, one row a line)
FORBIDDEN = ("\t", "\n", "\r")


def line_origin(relpath: str, linenos: Sequence[int]) -> Origin:
    """The origin of rows read from the lines ``linenos`` (one per row) of ``relpath``."""
    return lambda i: (relpath, f"line {linenos[i]}")


def first_repeat(values: pa.Array | pa.ChunkedArray | Sequence[str]) -> tuple[int, int] | None:
    """``(first, second)``: the positions of the earliest value seen twice (the second occurrence
    earliest), or None when all are distinct. A hash in Arrow decides; Python looks only on failure."""
    array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values), pa.string())
    if len(array) < 2 or len(pc.unique(array)) == len(array):  # one hash pass (count_distinct is slower)
        return None
    seen: dict[str, int] = {}
    for position, value in enumerate(array.to_pylist()):
        first = seen.setdefault(value, position)
        if first != position:
            return first, position
    return None  # unreachable: count_distinct saw a repeat


def both_entries(first: tuple[str, str], second: tuple[str, str]) -> str:
    """``lines 3 and 9`` (one file), else ``line 9 and train.lst line 3``: the second entry's file is the
    one the error names."""
    (file_a, where_a), (file_b, where_b) = first, second
    if file_a != file_b:
        return f"{where_b} and {file_a} {where_a}"
    if where_a.startswith("line ") and where_b.startswith("line "):
        return f"lines {where_a[5:]} and {where_b[5:]}"
    return f"{where_a} and {where_b}"


def check_class_names(root: Path, classes: Sequence[str], origin: Origin | None, doc: str | None) -> None:
    """Class names are unique and hold no tab or line break (they are a column of the split files)."""
    where = origin or (lambda i: ("", f"class {i}"))
    for index, name in enumerate(classes):
        if any(c in name for c in FORBIDDEN):
            relpath, position = where(index)
            raise DatasetError(Path(root) / relpath, f"{position}: class name {name!r} holds a tab or line break, "
                               "which a split file cannot store", doc)
    repeat = first_repeat(classes)
    if repeat is not None:
        a, b = repeat
        first, second = where(a), where(b)
        raise DatasetError(Path(root) / second[0], f"{both_entries(first, second)} both name the class {classes[a]!r}: "
                           "class names must be unique", doc)


def check_rows(root: Path, split_names: Sequence[str], origins: Sequence[Origin | None], samples: pa.Table,
               doc: str | None) -> None:
    """Every path of ``samples`` once: not twice in a split, not in two splits, so never under two labels.

    ``samples`` holds the splits' rows one split after another, in ``split_names`` order; ``origins``
    gives, per split, where its rows come from (None: the message counts rows instead)."""
    paths = samples.column("path")
    repeat = first_repeat(paths)
    if repeat is None:
        return
    split_ids = samples.column("split").combine_chunks().indices.to_numpy()
    firsts, starts_at = np.unique(split_ids, return_index=True)
    starts = dict(zip(firsts.tolist(), starts_at.tolist()))
    labels = samples.column("class_name")

    def entry(row: int) -> tuple[str, str, str]:
        split = int(split_ids[row])
        within = row - starts[split]
        origin = origins[split]
        relpath, position = origin(within) if origin else ("", f"row {within + 1} of split {split_names[split]}")
        return split_names[split], relpath, position

    a, b = repeat
    (split_a, file_a, where_a), (split_b, file_b, where_b) = entry(a), entry(b)
    problem = f"twice in split {split_a}" if split_a == split_b else f"in two splits, {split_a} and {split_b}"
    class_a, class_b = labels[a].as_py(), labels[b].as_py()
    if class_a != class_b:
        problem += f", under two classes, {class_a!r} and {class_b!r}"
    problem += "; each image once per split" if split_a == split_b else "; the official splits must be disjoint"
    raise DatasetError(Path(root) / file_b, f"{both_entries((file_a, where_a), (file_b, where_b))} both list "
                       f"{paths[a].as_py()}: one image {problem}", doc)
