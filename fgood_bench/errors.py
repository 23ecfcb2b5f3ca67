"""Errors the user can act on.

The CLI prints a :class:`FgoodError` as a single line on stderr and exits with status 2; any other
exception is a bug in fgood-bench and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path

EXIT_BAD_INPUT = 2  # the exit status of a FgoodError (and of a bad command line)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """A count and its noun, for messages: '1 split', '3 splits', '1,200 images'."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def article(word: str) -> str:
    """A name with its indefinite article, for messages: 'an imagefolder', 'a cub'."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def first_line(err: BaseException) -> str:
    """The first non-blank line of an error's message (torch's messages run over many lines)."""
    return next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)


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
