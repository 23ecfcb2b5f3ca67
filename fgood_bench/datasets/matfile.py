"""Reading the MATLAB files of the official devkits (Flowers-102, Stanford Cars, ImageNet) with clear errors.

Every array read is checked for its shape and type before use: a damaged or hand-made file (labels
saved as a 2 x N matrix, a struct field holding a vector) is refused in one line naming the file,
the variable and what was found, never met later as an IndexError.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fgood_bench.errors import DatasetError


def load_mat(path: Path, variables: tuple[str, ...], doc: str) -> dict[str, np.ndarray]:
    """Load ``variables`` from a ``.mat`` file, squeezed as torchvision does (``squeeze_me=True``)."""
    if path.is_dir():
        raise DatasetError(path, "a folder where a file is expected", doc)
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


def vector(path: Path, name: str, values, doc: str) -> np.ndarray:
    """A MATLAB 1 x N (or N x 1) array, squeezed, as a 1-D array; any other shape is refused."""
    array = np.asarray(values)
    if array.ndim > 1:
        raise DatasetError(path, f"variable {name!r} must be a 1 x N vector, got shape {' x '.join(map(str, array.shape))}", doc)
    return np.atleast_1d(array)


def _integral(values: np.ndarray) -> bool:
    return values.dtype.kind in "iu" or (values.dtype.kind == "f" and bool(np.all(values == np.round(values))))


def integers(path: Path, name: str, values: np.ndarray, doc: str) -> np.ndarray:
    """A MATLAB numeric vector as int64: the devkits store uint8/uint16, which wrap on arithmetic."""
    values = vector(path, name, values, doc)
    if values.dtype.kind not in "iuf" or not _integral(values):
        raise DatasetError(path, f"variable {name!r} must hold integers, got {values.dtype}", doc)
    return values.astype(np.int64)


def strings(path: Path, name: str, values, doc: str) -> list[str]:
    """A MATLAB cell vector of strings (``class_names``) as a list of str."""
    values = vector(path, name, values, doc)
    bad = next((i for i, value in enumerate(values.tolist()) if not isinstance(value, str)), None)
    if bad is not None:
        raise DatasetError(path, f"{name}[{bad}] must be a string, got {_describe(values[bad])}", doc)
    return [str(value) for value in values.tolist()]


def _describe(value) -> str:
    array = np.asarray(value)
    return f"{array.dtype} of shape {' x '.join(map(str, array.shape)) or 'scalar'}"


def struct_field(path: Path, records: np.ndarray, field: str, doc: str, kind: str | None = None,
                 variable: str = "annotations") -> list:
    """One field of a MATLAB struct vector loaded with ``squeeze_me=True``; ``kind`` ``"int"`` or ``"str"``
    checks that every value is one scalar integer / one string (and returns Python ints / strs)."""
    records = vector(path, variable, records, doc)
    if records.dtype.names is None or field not in records.dtype.names:
        raise DatasetError(path, f"the {variable} have no field {field!r}", doc)
    values = [record[field] for record in records]
    if kind is None:
        return values
    checked = []
    for position, value in enumerate(values):
        array = np.asarray(value)
        if kind == "str" and isinstance(value, str):
            checked.append(str(value))
        elif kind == "int" and array.ndim == 0 and array.dtype.kind in "iuf" and _integral(array):
            checked.append(int(array))
        else:
            wanted = "a string" if kind == "str" else "one integer"
            raise DatasetError(path, f"{variable}({position + 1}).{field} must be {wanted}, got {_describe(value)}", doc)
    return checked
