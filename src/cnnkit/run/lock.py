"""One writer per run folder: a lock file holding the writer's process id, host and command.

A lock left by a process that no longer exists (killed, machine restarted) is stale: the next writer says so and takes
it. The lock is re-entrant within one process (evaluation that builds the latent index writes twice).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from cnnkit._io import output_error
from cnnkit.errors import RunError

log = logging.getLogger("cnnkit")

LOCK_FILE = ".lock"
_held: dict[Path, int] = {}  # lock path -> depth, for the locks this process holds


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def read_owner(folder: Path) -> dict | None:
    """Who holds the folder's lock (pid, host, command, since), or None."""
    try:
        owner = json.loads((folder / LOCK_FILE).read_text(encoding="utf-8"))
        return owner if isinstance(owner, dict) else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def owner_alive(owner: dict | None) -> bool:
    """Whether the lock's owner still runs (a lock from another host is taken as alive: it cannot be checked)."""
    if not owner or not isinstance(owner.get("pid"), int):
        return False
    if owner.get("host") != socket.gethostname():
        return True
    return owner["pid"] == os.getpid() or _alive(owner["pid"])


def _describe(owner: dict) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("since", 0)))
    return f"process {owner.get('pid')} on {owner.get('host')} ({owner.get('command', '?')}, since {since})"


def _take(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv[:3]),
                       "since": time.time()}, f)
    except OSError as e:  # a full disk: no empty lock left behind to look like a dead writer's
        path.unlink(missing_ok=True)
        raise output_error(path, e) from None
    return True


def refuse_if_written(folder: str | Path) -> None:
    """RunError now, before any work, when another live process holds the folder's lock (the check ``acquire``
    makes at the end, made at the start: nothing is computed only to be refused)."""
    folder = Path(folder)
    path = (folder / LOCK_FILE).resolve()
    owner = None if path in _held else read_owner(folder)
    if owner_alive(owner) and owner.get("pid") != os.getpid():
        raise RunError(f"{folder} is being written by {_describe(owner)}; one writer at a time. Wait for it to "
                       f"end, or write elsewhere. If that process is gone, delete {path}.")


def acquire(folder: Path) -> None:
    path = (folder / LOCK_FILE).resolve()
    if path in _held:
        _held[path] += 1
        return
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        if _take(path):
            _held[path] = 1
            return
        owner = read_owner(folder)
        if owner_alive(owner):
            raise RunError(f"{folder} is being written by {_describe(owner)}; one writer at a time. Wait for it to "
                           f"end, or write elsewhere. If that process is gone, delete {path}.")
        log.warning("Taking over %s: its lock was left by %s, which no longer runs.", folder,
                    _describe(owner or {}))
        path.unlink(missing_ok=True)
    raise RunError(f"Could not take the lock {path}; another process keeps creating it.")


def release(folder: Path) -> None:
    path = (folder / LOCK_FILE).resolve()
    if path not in _held:
        return
    _held[path] -= 1
    if _held[path] == 0:
        del _held[path]
        path.unlink(missing_ok=True)


@contextmanager
def locked(folder: str | Path):
    """Hold the folder's lock for the block (re-entrant); temporary files a killed writer left are removed. A folder
    the block created and left empty is removed with the lock."""
    folder = Path(folder)
    existed = folder.exists()
    acquire(folder)
    try:
        if _held.get((folder / LOCK_FILE).resolve()) == 1:
            remove_temporary_files(folder)
        yield
    finally:
        release(folder)
        if not existed and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


@contextmanager
def locked_if_inside(run_dir: str | Path, path: str | Path):
    """The run's lock (``locked``) for the block when ``path`` lies inside the run folder (an inspection or a scan
    written into the run by default); no lock for a path elsewhere."""
    if Path(run_dir).resolve() in Path(path).resolve().parents:
        with locked(run_dir):
            yield
    else:
        yield


def remove_temporary_files(folder: Path) -> None:
    """``.*.tmp`` files (half-written outputs of a killed writer) in the folder and its direct sub-folders."""
    for pattern in (".*.tmp", "*/.*.tmp"):
        for path in folder.glob(pattern):
            try:
                path.unlink()
                log.info("Removed %s, left half-written by an interrupted writer.", path)
            except OSError:
                pass
