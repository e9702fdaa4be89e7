"""A real full disk for the tests: a small tmpfs mounted for the block (root only), filled to a few kilobytes."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(folder: Path, size: str = "1m"):
    """A tmpfs of ``size`` mounted on ``folder`` for the block, unmounted after; the test is skipped, saying why,
    where mounting is not allowed (not root, a container without the capability)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"no small tmpfs can be mounted here ({mounted.stderr.strip() or 'mount failed'}); the "
                    "injected ENOSPC tests cover the same code")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave: int = 0) -> None:
    """Fill the file system of ``folder``, then give back ``leave`` bytes."""
    filler = folder / "filler"
    try:
        with open(filler, "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass
    os.truncate(filler, max(0, filler.stat().st_size - leave))


def leftovers(folder: Path) -> list[str]:
    """Temporary files a failed write left: ``.NAME.*.tmp``, ``.NAME.partial``, a lock."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*")
                  if p.name.endswith((".tmp", ".partial")) or p.name == ".lock")
