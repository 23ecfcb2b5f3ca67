"""Reading the user's input files strictly, in one place.

Every file a command is given (a manifest, a release config, a results.json, an audit.json, a
predictions ``.npz``, a checkpoint) is opened by :func:`open_regular`, which refuses a FIFO, a
device, a socket or a folder with one line instead of blocking on it. On top of it:

- :func:`read_json`: UTF-8, no duplicate keys, no ``NaN`` / ``Infinity`` (nor numbers that
  overflow to them);
- :func:`read_yaml`: YAML's safe subset, no duplicate keys, at most :data:`MAX_DEPTH` levels of
  nesting and at most :data:`MAX_NODES` values once aliases are expanded (a few hundred bytes of
  nested aliases otherwise stand for billions of values);
- :func:`open_npz`: a zip archive whose member names are unique (``zipfile`` keeps both of two
  ``logits.npy`` and reads the last);
- :func:`cut`: a value as an error message may quote it, at most ~80 characters.

Each refusal is a :class:`~fgood_bench.errors.FgoodError` naming the file. Ground floor: only the
standard library here; yaml is imported where it is used (``--help`` stays light).
"""

from __future__ import annotations

import json
import math
import os
import reprlib
import stat
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Iterator

from fgood_bench.errors import FgoodError, article

MAX_DEPTH = 100  # levels of nesting a YAML document may have
MAX_NODES = 100_000  # values a YAML document may hold, its aliases expanded
CUT_WIDTH = 80

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, CUT_WIDTH, CUT_WIDTH
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 6


def clip(text: str, width: int = CUT_WIDTH) -> str:
    """``text`` on one line, at most ``width`` characters (an ellipsis marks the cut)."""
    text = " ".join(text[: 4 * width].split())
    return text if len(text) <= width else text[: width - 1] + "…"


def cut(value, width: int = CUT_WIDTH) -> str:
    """``repr(value)`` as an error message may quote it: one line of at most ``width`` characters,
    and never the whole repr of a huge or deeply nested value (which can take minutes to build)."""
    if isinstance(value, str):
        text = repr(value[: width + 1])
    elif isinstance(value, int):
        try:
            text = repr(value)
        except ValueError:  # more digits than Python converts
            text = "<an integer of thousands of digits>"
    else:
        text = _REPR.repr(value)
    return clip(text, width)


def expand_user(path: str | Path) -> Path:
    """``Path(path).expanduser()``, with ``~nosuchuser/...`` as one line rather than a RuntimeError."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        user = str(path).replace("\\", "/").split("/")[0]
        raise FgoodError(f"{clip(str(path), 200)}: {cut(user)} names no home folder (no such user)") from None


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def open_regular(path: str | Path, what: str = "file") -> BinaryIO:
    """``path`` opened for binary reading, after checking that it is a regular file (a symbolic
    link to one is fine). A FIFO, device, socket or folder is refused with one line naming the file;
    it is opened without blocking (``O_NONBLOCK``), so that a FIFO nobody writes to never hangs the
    command. ``what`` names the file in messages (``"manifest file"``: "a folder, not a manifest file")."""
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FgoodError(f"{path}: {what} not found") from None
    except IsADirectoryError:  # where a folder cannot be opened at all (Windows)
        raise FgoodError(f"{path}: a folder, not {article(what)}") from None
    except OSError as err:  # ENXIO: a socket; EACCES; ELOOP; ENAMETOOLONG ...
        try:
            mode = os.stat(path).st_mode
        except OSError:
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode):
            raise FgoodError(f"{path}: {_kind(mode)}, not {article(what)}") from None
        raise FgoodError(f"{path}: {what} cannot be read ({err.strerror or err})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FgoodError(f"{path}: {_kind(mode)}, not {article(what)}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # a regular file: ordinary reads from here on
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, what: str = "file") -> bytes:
    """The bytes of the regular file ``path`` (see :func:`open_regular`)."""
    with open_regular(path, what) as handle:
        try:
            return handle.read()
        except OSError as err:
            raise FgoodError(f"{path}: {what} cannot be read ({err.strerror or err})") from None


def read_text(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of the regular file ``path``; one line naming the byte where it is not UTF-8."""
    data = read_regular(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FgoodError(f"{path}: {what} is not UTF-8 text ({err.reason} at byte {err.start})") from None


# -- JSON ------------------------------------------------------------------------------------


class _Refused(ValueError):
    """What the JSON hooks raise: the message is the file's problem, without JSON's position."""


def _unique_object(pairs: list) -> dict:
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _Refused(f"key {cut(key)} appears twice in one object")
        seen[key] = value
    return seen


def _no_constant(name: str):
    raise _Refused(f"{name} is not a JSON number (a finite number is expected)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number {cut(text)} overflows to infinity")
    return value


def loads_json(text: str, source: str | Path, what: str = "file") -> object:
    """Strict JSON from ``text`` (read from ``source``, named in messages): no duplicate keys, no
    NaN / Infinity, no float that overflows to infinity."""
    try:
        return json.loads(text, object_pairs_hook=_unique_object, parse_constant=_no_constant, parse_float=_finite_float)
    except _Refused as err:
        raise FgoodError(f"{source}: {err}") from None
    except RecursionError:  # 200k nested brackets
        raise FgoodError(f"{source}: not a readable JSON {what} (nested too deeply)") from None
    except ValueError as err:  # JSON syntax, a 5,000-digit integer
        raise FgoodError(f"{source}: not a readable JSON {what} ({clip(str(err) or type(err).__name__, 160)})") from None


def read_json(path: str | Path, what: str = "file") -> object:
    """The JSON document in the regular file ``path``, strictly (see :func:`loads_json`); ``what``
    names the file in messages (``"manifest file"``)."""
    return loads_json(read_text(path, what), path, what)


# -- YAML ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _strict_loader():
    """A ``yaml.SafeLoader`` (the pure-Python one: its composer can be limited) that refuses duplicate
    keys, nesting deeper than MAX_DEPTH and documents of more than MAX_NODES values, aliases expanded."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def __init__(self, stream):
            super().__init__(stream)
            self._depth = 0
            self._sizes: dict[int, int] = {}

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):  # an alias: the anchored node again (its size counts again)
                return super().compose_node(parent, index)
            self._depth += 1
            try:
                if self._depth > MAX_DEPTH:
                    raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                                      self.peek_event().start_mark)
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def compose_document(self):
            node = super().compose_document()
            if node is not None:
                self._size(node)
            return node

        def _size(self, root) -> int:
            """Values under ``root`` with aliases expanded (each node's size computed once)."""
            sizes, open_nodes, stack = self._sizes, set(), [(root, False)]
            while stack:
                node, done = stack.pop()
                if id(node) in sizes:
                    continue
                children = ([] if isinstance(node, yaml.ScalarNode) else
                            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value)
                if done:
                    open_nodes.discard(id(node))
                    sizes[id(node)] = total = 1 + sum(sizes[id(c)] for c in children)
                    if total > MAX_NODES:
                        raise yaml.composer.ComposerError(
                            None, None, f"holds more than {MAX_NODES:,} values once its aliases are expanded", node.start_mark)
                    continue
                if id(node) in open_nodes:  # an anchor used inside itself
                    raise yaml.composer.ComposerError(None, None, "an alias refers to a value that holds it", node.start_mark)
                open_nodes.add(id(node))
                stack.append((node, True))
                for child in children:
                    if id(child) in open_nodes:
                        raise yaml.composer.ComposerError(None, None, "an alias refers to a value that holds it",
                                                          child.start_mark)
                    if id(child) not in sizes:
                        stack.append((child, False))
            return sizes[id(root)]

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        repeated = key in seen
                        seen.add(key)
                    except TypeError:  # an unhashable key: the constructor refuses it below
                        continue
                    if repeated:
                        raise yaml.constructor.ConstructorError(None, None, f"key {cut(key)} appears twice in one mapping",
                                                                key_node.start_mark)
            return super().construct_mapping(node, deep)

    return StrictLoader


def loads_yaml(text: str, source: str | Path):
    """The YAML document ``text`` (read from ``source``, named in messages), strictly: one line with
    the line number and at most ~80 characters of the problem for any error."""
    import yaml

    loader = _strict_loader()(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or (str(err).splitlines()[0] if str(err) else type(err).__name__)
        raise FgoodError(f"{source}: not valid YAML ({f'line {where.line + 1}: ' if where else ''}{clip(str(problem))})") from None
    except RecursionError:  # a guard: the composer's depth is limited above
        raise FgoodError(f"{source}: not valid YAML (nested too deeply)") from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path, what: str = "file"):
    """The YAML document in the regular file ``path``, strictly (see :func:`loads_yaml`)."""
    return loads_yaml(read_text(path, what), path)


# -- npz (zip) archives ----------------------------------------------------------------------


@contextmanager
def open_npz(path: str | Path, what: str = "npz file") -> Iterator:
    """The ``zipfile.ZipFile`` of the regular file ``path`` (a numpy ``.npz``), its member names
    checked to be unique: a zip may hold two ``logits.npy`` entries, of which numpy and zipfile read
    the last one without a word."""
    import zipfile

    with open_regular(path, what) as handle:
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
            raise FgoodError(f"{path}: not a .npz file (numpy.savez writes a zip archive; {clip(str(err))})") from None
        with archive:
            seen = set()
            for info in archive.infolist():
                if info.filename in seen:
                    raise FgoodError(f"{path}: member {cut(info.filename)} appears twice in the archive "
                                     "(which one is meant is ambiguous)")
                seen.add(info.filename)
            yield archive
