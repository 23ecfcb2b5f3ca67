"""Where commands write, and how: the one place that creates, replaces and locks output folders.

The rule every command follows (docs/outputs.md):

* A command writes only into a folder it created itself. It marks each one with a small
  ``.fgood-bench.json`` naming the kind of output; it never deletes or replaces anything else.
* An earlier output of the same kind is replaced only with ``--overwrite``; a target that is a
  file, a device, another kind's output or a non-empty folder it did not create is refused.
* Files are written to a ``.NAME.partial-*`` sibling, flushed to disk (``fsync``) and renamed:
  an interrupted or failed run leaves the previous output or nothing, never half a file. A
  kill between the two renames of a folder replacement is repaired by the next run.
* A run holds a lock (``flock``) on its output, so a second run into the same folder refuses.
* A failed command leaves no empty output folder behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

from fgood_bench.inputs import open_regular
from fgood_bench.errors import FgoodError, article

MARKER = ".fgood-bench.json"
LEGACY_PARTIAL = ".partial"  # the suffix of partial files before this module: cleaned like ours


# ---------------------------------------------------------------------------------------- hashes
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    try:
        with open_regular(path) as handle:  # a FIFO or a device is refused, never waited on
            while block := handle.read(chunk):
                digest.update(block)
    except IsADirectoryError:
        raise FgoodError(f"{path}: a folder, not a file") from None
    except OSError as err:
        raise FgoodError(f"{path}: cannot be read ({err.strerror or err})") from None
    return digest.hexdigest()


def sha256_files(root: Path, relpaths: list[str], workers: int = 8) -> list[str]:
    """sha256 of many files, read in parallel threads (hashing releases the GIL)."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda rel: sha256_file(root / rel), relpaths))


def strict_json(value, **options) -> str:
    """JSON that every parser reads: NaN and infinities are refused, not written as bare ``NaN``."""
    try:
        return json.dumps(value, allow_nan=False, **options)
    except ValueError as err:
        raise FgoodError(f"a result is not a finite number and cannot be written as JSON ({err})") from None


def json_bytes(value) -> bytes:
    """A JSON file's bytes: :func:`strict_json`, indented, UTF-8 (names as they are), final newline."""
    return (strict_json(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# ------------------------------------------------------------------------------ durable writing
def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync folders; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _cannot_write(path: Path, err: BaseException) -> FgoodError:
    if isinstance(err, OSError):
        return FgoodError(f"{path}: cannot be written ({err.strerror or err}); nothing was changed there")
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return FgoodError(f"{path}: cannot be written ({reason}); nothing was changed there")


def atomic_write(path: Path, write: Callable[[Path], None], *, errors: tuple = (OSError,)) -> None:
    """``write(partial)`` fills a sibling ``.NAME.partial-*`` file that then replaces ``path``, after an fsync.

    On any failure (a full disk included) the partial file is removed and ``path`` is left as it was;
    ``errors`` are reported as one line (torch reports write failures as RuntimeError).
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.partial-", dir=path.parent)
    os.close(fd)
    partial = Path(name)
    try:
        write(partial)
        with open(partial, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(partial, 0o644)
        partial.replace(path)
        _fsync_folder(path.parent)
    except BaseException as err:
        partial.unlink(missing_ok=True)
        if isinstance(err, errors):
            raise _cannot_write(path, err) from None
        raise


def atomic_write_bytes(path: Path, content: bytes) -> None:
    atomic_write(path, lambda partial: partial.write_bytes(content))


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Each file (name -> content) into ``folder``, next to what is there, each with :func:`atomic_write_bytes`."""
    for name, content in files.items():
        atomic_write_bytes(Path(folder) / name, content)


def append_line(path: Path, line: str) -> None:
    """Append one line to a log (a full disk is one line of error, not a traceback)."""
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError as err:
        raise FgoodError(f"{path}: cannot be written ({err.strerror or err})") from None


# -------------------------------------------------------------------------------------- markers
def pin_settings(path: Path, settings: dict, what: str) -> None:
    """A resumable run's settings (a study's, a sweep's): written on its first run, and every later
    run into the same folder must give the same ones (the changed keys are named)."""
    if not path.exists():
        write_files(path.parent, {path.name: json_bytes(settings)})
        return
    before = json.loads(path.read_text(encoding="utf-8"))
    if before != settings:
        changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
        raise FgoodError(f"{path}: this {what} was started with other settings ({', '.join(changed)}); use another --out")


def read_marker(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def marker_bytes(kind: str) -> bytes:
    """No time stamp: equal outputs stay byte-identical."""
    return (json.dumps({"written_by": "fgood-bench", "kind": kind}) + "\n").encode()


def _kind_of(folder: Path) -> str | None:
    marker = read_marker(folder)
    return marker.get("kind") if marker else None


# ------------------------------------------------------------------------------------ locking
class _Lock:
    """An exclusive ``flock`` on a folder or a lock file, refused (not waited for) when held."""

    def __init__(self, path: Path, what: Path, file: bool):
        self.path, self.what, self.file, self.fd = path, what, file, None

    def acquire(self) -> None:
        while True:
            flags = (os.O_RDWR | os.O_CREAT) if self.file else (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                fd = os.open(self.path, flags, 0o644)
            except OSError as err:
                raise FgoodError(f"{self.what}: cannot be used as the output ({err.strerror or err})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise FgoodError(f"{self.what}: another fgood-bench run is writing there; wait for it to finish "
                                     "or choose another --out") from None
                raise FgoodError(f"{self.what}: cannot be locked ({err.strerror or err})") from None
            if not self.file or _same_file(fd, self.path):
                self.fd = fd
                return
            os.close(fd)  # the lock file was removed by the run that held it: take the new one

    def release(self) -> None:
        if self.fd is None:
            return
        if self.file:
            with contextlib.suppress(OSError):
                self.path.unlink()
        os.close(self.fd)
        self.fd = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


# ----------------------------------------------------------------------------- folder checks
def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; returns those created (deepest last). Refuses non-folders."""
    missing = []
    current = Path(folder)
    while True:
        try:
            if current.is_dir():
                break
            if current.exists() or current.is_symlink():
                raise FgoodError(f"{current}: not a folder; choose another --out")
        except OSError as err:
            raise FgoodError(f"{current}: cannot be used as the output ({err.strerror or err})") from None
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    created = []
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            if not path.is_dir():
                raise FgoodError(f"{path}: not a folder; choose another --out") from None
            continue
        except OSError as err:
            _remove_empty(created)
            raise FgoodError(f"{path}: cannot be created as the output folder ({err.strerror or err})") from None
        created.append(path)
    if not os.access(folder, os.W_OK):
        _remove_empty(created)
        raise FgoodError(f"{folder}: output folder is not writable")
    return created


def _remove_empty(created: list[Path]) -> None:
    for path in reversed(created):
        with contextlib.suppress(OSError):
            path.rmdir()


def _entries(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError as err:
        raise FgoodError(f"{folder}: cannot be read ({err.strerror or err})") from None


def _check_target(target: Path, kind: str, overwrite: bool, hint: str, owned: Iterable[str] = ()) -> bool:
    """Whether ``target`` may be written: True if it holds an earlier output of ``kind`` (to replace)."""
    if not (target.exists() or target.is_symlink()):
        return False
    if target.is_symlink() or not target.is_dir():
        raise FgoodError(f"{target}: exists and is not a folder; fgood-bench does not replace it (choose another --out)")
    entries = [e for e in _entries(target) if not _is_ours_partial(e)]
    if not entries:
        return False
    found = _kind_of(target)
    if found is None and owned and MARKER not in entries and set(entries) <= set(owned):
        found = kind  # an output of this kind written before outputs were marked
    if found is None:
        raise FgoodError(f"{target}: a folder that fgood-bench did not create ({len(entries)} entries); it is never "
                         "replaced: choose a new or empty folder")
    if found != kind:
        raise FgoodError(f"{target}: holds {article(found)} output, not {article(kind)} output; it is not replaced: choose another folder")
    if not overwrite:
        raise FgoodError(f"{target}: holds an earlier {kind} output; {hint}")
    return True


def _is_ours_partial(name: str) -> bool:
    return name.startswith(".") and (".partial-" in name or ".old-" in name or name.endswith(LEGACY_PARTIAL))


# ------------------------------------------------------------------- whole-folder outputs
class StagedFolder:
    """An output folder ``OUT/NAME`` written whole at the end of a command (see :func:`output_folder`)."""

    def __init__(self, target: Path, kind: str, replace: bool):
        self.target, self.kind, self.replace = target, kind, replace

    def write(self, files: dict[str, bytes], populate: Callable[[Path], None] | None = None) -> Path:
        """Create ``target`` holding exactly ``files`` (relative path -> content) and the marker;
        ``populate`` may add what is not bytes (links) to the staging folder before the swap.

        The files go to ``.NAME.partial-*``, are fsynced, and that folder replaces ``target``: a
        previous output is first renamed to ``.NAME.old-*`` (restored by the next run if a kill
        comes between the two renames), then removed.
        """
        target = self.target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
        try:
            _write_tree(staging, {MARKER: marker_bytes(self.kind), **files})
            if populate is not None:
                populate(staging)
            os.chmod(staging, 0o755)
            _fsync_folder(staging)
            retired = None
            if target.exists():
                retired = target.parent / f".{target.name}.old-{staging.name.rpartition('-')[2]}"
                target.replace(retired)
            try:
                staging.replace(target)
            except OSError:
                if retired is not None:
                    retired.replace(target)  # put the previous output back
                raise
            _fsync_folder(target.parent)
            if retired is not None:
                shutil.rmtree(retired, ignore_errors=True)
        except OSError as err:
            shutil.rmtree(staging, ignore_errors=True)
            raise FgoodError(f"{target}: cannot be written ({err.strerror or err}); nothing was changed there") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target


def _write_tree(folder: Path, files: dict[str, bytes]) -> None:
    folders = {folder}
    for relpath, content in files.items():
        path = folder / relpath
        if not path.resolve().is_relative_to(folder.resolve()):
            raise FgoodError(f"{relpath!r}: an output file must stay inside its folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        folders.add(path.parent)
        with open(path, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    for sub in folders:
        _fsync_folder(sub)


def recover(parent: Path, name: str) -> None:
    """Repair what a killed replacement of ``parent/name`` left: restore a previous output that was
    moved aside, and remove half-written ``.NAME.partial-*`` folders (only fgood-bench's own)."""
    target = parent / name
    leftovers = sorted(e for e in _entries(parent) if e.startswith(f".{name}.partial-") or e.startswith(f".{name}.old-"))
    for entry in leftovers:
        path = parent / entry
        if not path.is_dir() or path.is_symlink():
            continue
        contents = _entries(path)
        if contents and read_marker(path) is None:
            continue  # not ours: leave it
        if entry.startswith(f".{name}.old-") and contents and not target.exists():
            path.replace(target)
        else:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def output_folder(target: str | Path, kind: str, overwrite: bool = False,
                  hint: str = "pass --overwrite to replace it") -> Iterator[StagedFolder]:
    """Claim ``OUT/NAME`` for a command that writes it whole at its end (``.write(files)``).

    Checked and locked at once, and held for the whole command (enter it before any long work):
    a refused target fails before that work, and while the command runs a second one into the same
    target is refused at once. ``OUT`` is created if needed and removed again if the command fails
    before writing.
    """
    target = Path(target)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 claims and writes
        yield StagedFolder(target, kind, False)
        return
    created = _make_folders(target.parent)
    lock = _Lock(target.parent / f".{target.name}.lock", target, file=True)
    written = False
    try:
        lock.acquire()
        recover(target.parent, target.name)
        replace = _check_target(target, kind, overwrite, hint)
        staged = StagedFolder(target, kind, replace)
        yield staged
        written = True
    finally:
        lock.release()
        if not written:
            _remove_empty(created)


# A name a command joins to its output folder (``OUT/NAME``): one plain path component, as the
# manifest schema's ``benchmark`` pattern (a manifest named otherwise could not be loaded again)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def output_name(name: str, option: str = "--name") -> str:
    """``name`` if it is one plain path component (letters, digits, '_', '.', '-'; not starting with
    '.', '_' or '-': no '/', no '..', not absolute, not empty, no control character), else one line
    naming ``option``. Every name a command joins to an output folder goes through it."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise FgoodError(f"{option} {name!r}: a name is one plain folder name of letters, digits, '_', '.' or '-', "
                         "starting with a letter or digit (no '/', no '..', not absolute)")
    return name


def is_inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (symbolic links resolved)."""
    path_real, folder_real = os.path.realpath(path), os.path.realpath(folder)
    return path_real == folder_real or path_real.startswith(folder_real.rstrip("/") + "/")


def refuse_inside_dataset(out: str | Path, root: str | Path, option: str = "--out") -> None:
    """Outputs never go into a dataset folder: ``--out`` (or ``option``, e.g. ``--work-dir``) inside
    the dataset being read is refused."""
    if is_inside(out, root):
        raise FgoodError(f"{option} {out}: inside the dataset folder {root}; outputs never go into a dataset: "
                         "choose a folder outside it")


def preflight(target: str | Path, kind: str, overwrite: bool = False, hint: str = "pass --overwrite to replace it") -> None:
    """Refuse a target that :func:`write_folder` would refuse, now, before long work; creates nothing."""
    target = Path(target)
    current = target.parent
    while not current.is_dir():
        if current.exists() or current.is_symlink():
            raise FgoodError(f"{current}: not a folder; choose another --out")
        if current.parent == current:
            break
        current = current.parent
    if not os.access(current, os.W_OK):
        raise FgoodError(f"{current}: not writable; choose another --out")
    if target.parent.is_dir():
        recover(target.parent, target.name)
    _check_target(target, kind, overwrite, hint)


def write_folder(target: str | Path, files: dict[str, bytes], *, kind: str = "output", overwrite: bool = False,
                 populate: Callable[[Path], None] | None = None) -> Path:
    """``files`` as the folder ``target``, replacing an earlier output of ``kind`` only with ``overwrite``
    (``populate``: see :meth:`StagedFolder.write`)."""
    with output_folder(target, kind, overwrite) as staged:
        return staged.write(files, populate)


# ------------------------------------------------------------------------------ run folders
@contextlib.contextmanager
def run_folder(folder: str | Path, kind: str, *, reuse: bool = False, hint: str = "pass --overwrite to replace it",
               owned: Iterable[str] = ()) -> Iterator[Path]:
    """Claim ``folder`` for a command that writes files into it as it goes (train, evaluate, report).

    A new or empty folder is marked as ``kind``; an earlier output of ``kind`` is used again only with
    ``reuse`` (``--overwrite``, ``--resume``), else refused with ``hint``; ``owned`` lists the names
    the command writes (a folder holding only those counts as its output from before markers). The
    folder is locked while the command runs; if it fails, a folder it created and left empty is
    removed, and partial files are cleaned.
    """
    folder = Path(folder)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 claims and writes
        yield folder
        return
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise FgoodError(f"{folder}: exists and is not a folder; fgood-bench does not replace it (choose another --out)")
    created = _make_folders(folder)
    lock = _Lock(folder, folder, file=False)
    marked = False
    ok = False
    try:
        lock.acquire()
        _check_target(folder, kind, reuse, hint, owned)
        _clean_partials(folder)
        if read_marker(folder) is None:
            atomic_write_bytes(folder / MARKER, marker_bytes(kind))
            marked = True
        yield folder
        ok = True
    finally:
        if not ok:
            _clean_partials(folder)
            if marked and _entries(folder) == [MARKER]:
                (folder / MARKER).unlink(missing_ok=True)
        lock.release()
        if not ok:
            _remove_empty(created)


def _clean_partials(folder: Path) -> None:
    with contextlib.suppress(OSError):
        for entry in os.listdir(folder):
            path = folder / entry
            if _is_ours_partial(entry) and path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)


def clear_outputs(folder: Path, names: Iterable[str]) -> None:
    """Remove a command's own earlier files (``--overwrite``/``--restart``), nothing else."""
    for name in names:
        path = Path(folder) / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def ensure_output_folder(folder: Path) -> None:
    """Create ``folder`` (and parents) now, so that a bad --out fails before any long work.

    Kept for code that has not moved to :func:`output_folder` / :func:`run_folder`.
    """
    _make_folders(Path(folder))
