"""Reading the MATLAB files of the official devkits (Flowers-102, Stanford Cars) with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fgood_bench.errors import DatasetError


def load_mat(path: Path, variables: tuple[str, ...], doc: str) -> dict[str, np.ndarray]:
    """Load ``variables`` from a ``.mat`` file, squeezed as torchvision does (``squeeze_me=True``)."""
    if not path.is_file():
        raise DatasetError(path, "file is missing", doc)
    import scipy.io  # here, not at the top: the adapters are imported by every command line (--help included)

    try:
        content = scipy.io.loadmat(path, squeeze_me=True, variable_names=list(variables))
    except Exception as err:  # scipy raises ValueError, TypeError, OSError... for damaged files
        raise DatasetError(path, f"not a readable MATLAB file ({type(err).__name__}: {err})", doc) from None
    for name in variables:
        if name not in content:
            raise DatasetError(path, f"has no variable {name!r}", doc)
    return content


def integers(path: Path, name: str, values: np.ndarray, doc: str) -> np.ndarray:
    """A MATLAB numeric vector as int64: the devkits store uint8/uint16, which wrap on arithmetic."""
    values = np.atleast_1d(values)
    if values.dtype.kind not in "iuf" or (values.dtype.kind == "f" and not np.all(values == np.round(values))):
        raise DatasetError(path, f"variable {name!r} must hold integers, got {values.dtype}", doc)
    return values.astype(np.int64)


def struct_field(path: Path, records: np.ndarray, field: str, doc: str) -> list:
    """One field of a MATLAB struct array loaded with ``squeeze_me=True``."""
    records = np.atleast_1d(records)
    if records.dtype.names is None or field not in records.dtype.names:
        raise DatasetError(path, f"the annotations have no field {field!r}", doc)
    return [record[field] for record in records]
