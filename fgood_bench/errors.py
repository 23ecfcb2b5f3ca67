"""Errors the user can act on.

The CLI prints a :class:`FgoodError` as a single line on stderr and exits with status 2; any other
exception is a bug in fgood-bench and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

EXIT_BAD_INPUT = 2  # the exit status of a FgoodError (and of a bad command line)


class FgoodError(Exception):
    """A problem with the user's input (files, arguments), reported as one line."""


class DatasetError(FgoodError):
    """A dataset download that does not match its official layout.

    The message names the offending file, says what was expected there and points to the
    dataset's page in ``docs/datasets/``.
    """

    def __init__(self, path: str | Path, problem: str, doc: str | None = None):
        self.path = Path(path)
        self.problem = problem
        self.doc = doc
        message = f"{path}: {problem}"
        if doc:
            message += f" (see {doc})"
        super().__init__(message)
