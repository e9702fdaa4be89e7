"""Atomic file writes: a reader never sees half a file, a crash never clobbers a finished one.

Files get the mode the user's umask gives new files (not the 0600 of temporary files), and a write that cannot happen
(a read-only folder, a full disk, a path that is a file) is an ``OutputError`` naming the path.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnkit.errors import CnnkitError, OutputError

_UMASK: int | None = None


def _umask() -> int:
    """The process's umask (read once: reading it means setting it)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


def file_mode() -> int:
    return 0o666 & ~_umask()


def folder_mode() -> int:
    return 0o777 & ~_umask()


def output_error(path: Path, error: OSError) -> OutputError:
    return OutputError(f"Cannot write {path}: {error.strerror or error}.")


def _full(folder: Path) -> bool:
    """Whether the file system holding ``folder`` has (almost) no space left for this user."""
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):  # AttributeError: Windows has no statvfs
        return False
    return stats.f_bavail * stats.f_frsize < 64 * 1024


def write_failure(path: Path, error: BaseException, partial: Path | None = None) -> BaseException:
    """What to raise when writing ``path`` failed with ``error``: an OutputError naming ``path`` and the cause (a
    full disk said so, whatever words the writing library used: torch's "unexpected pos", safetensors' "os error
    28"); cnnkit's own errors, signals and Ctrl-C unchanged. ``partial`` (the half-written temporary file) is
    removed, once the disk has been looked at."""
    full = not isinstance(error, OSError) and _full(path.parent)
    if partial is not None:
        partial.unlink(missing_ok=True)
    if isinstance(error, CnnkitError) or not isinstance(error, Exception):
        return error
    if isinstance(error, OSError):
        reason = error.strerror or str(error)
    elif full:
        reason = os.strerror(errno.ENOSPC)
    else:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return OutputError(f"Cannot write {path}: {reason}.")


def make_folder(path: str | Path) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"Cannot write into {path}: it is a file, not a folder.") from None
    except OSError as e:
        raise output_error(path, e) from None
    return path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then move the temporary file over ``path`` in one step."""
    path = Path(path)
    make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise output_error(path, e) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, file_mode())
        os.replace(tmp_path, path)
    except BaseException as e:
        failure = write_failure(path, e, tmp_path)
        if failure is e:
            raise
        raise failure from (None if isinstance(e, OSError) else e)
    return path


class StreamingOutput:
    """Rows written as they come into ``.NAME.partial`` beside ``path`` (flushed, so progress can be followed), which
    becomes ``path`` in one step when the block ends without error; an interrupted writer leaves ``path`` as it was.
    ``header`` given: CSV rows (lists); else text lines."""

    def __init__(self, path: str | Path, header: list[str] | None = None):
        self.path = Path(path)
        self.partial = self.path.parent / f".{self.path.name}.partial"
        self.header, self._file, self._csv = header, None, None

    def __enter__(self) -> StreamingOutput:
        make_folder(self.path.parent)
        try:
            self._file = open(self.partial, "w", encoding="utf-8", newline="")
        except OSError as e:
            raise output_error(self.path, e) from None
        if self.header is not None:
            import csv

            self._csv = csv.writer(self._file)
            self._csv.writerow(self.header)
        return self

    def write(self, row) -> None:
        try:
            if self._csv is not None:
                self._csv.writerow(row)
            else:
                self._file.write(f"{row}\n")
            self._file.flush()
        except OSError as e:  # a full disk: the path named, the partial file removed when the block ends
            raise write_failure(self.path, e) from None

    def __exit__(self, kind, value, traceback) -> bool:
        try:
            self._file.close()  # flushes: may fail on a full disk too
            if kind is None:
                os.chmod(self.partial, file_mode())
                os.replace(self.partial, self.path)
            else:
                self.partial.unlink(missing_ok=True)
        except OSError as e:
            failure = write_failure(self.path, e, self.partial)
            if kind is None:
                raise failure from None
        return False


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read a megabyte at a time: what binds a file a run reads back to the record
    that describes it (an export's model, a saved index)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def replace_folder(target: str | Path, fill: Callable[[Path], None]) -> Path:
    """Write a set of outputs as a whole: ``fill(tmp_folder)`` writes them, then the new folder replaces ``target`` in
    one step, so files of an earlier set never mix with the new ones and a killed writer leaves the old set intact."""
    target = Path(target)
    make_folder(target.parent)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):  # left by a writer killed mid-way
        shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as e:
        raise output_error(target, e) from None
    try:
        fill(tmp)
        os.chmod(tmp, folder_mode())
        old = target.with_name(f".{target.name}.old.tmp")
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(target, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def shown_path(path: str | Path) -> str:
    """``path`` as a person reads it: relative to the working folder when it lies inside it, else as given (a
    record keeps absolute paths, so that it works from anywhere; a report or a printed line need not)."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path)


def shown_paths(text: str) -> str:
    """``text`` with every absolute path inside the working folder written relative to it (``shown_path``): for
    sentences that carry a path, such as an evaluation's "test split of /home/me/data"."""
    cwd, sep = re.escape(str(Path.cwd())), re.escape(os.sep)
    if str(Path.cwd()) == os.sep:
        return text
    start = rf"(?<![\w{sep}.~-]){cwd}"  # the working folder's path, not the end of a longer one
    return re.sub(rf"{start}(?=[\s,;:)'\"]|$)", ".", re.sub(rf"{start}{sep}(?=\S)", "", text))
