"""Decoded images on disk, for data larger than memory: one memory-mapped uint8 array (N, H, W, C) per data folder
and decoding, filled as images are first decoded, so epochs after the first read pixels instead of decoding again.

Kept as NumPy's ``.npy`` opened with ``mmap_mode`` rather than litdata or WebDataset shards: cnnkit's splits index
images at random (a seeded shuffle, an oversampler), which a memory map serves with no extra dependency and no
shard shuffling buffer, and a run's split and seed keep their meaning whatever the storage.

Each row remembers the size and modification time of the file it was decoded from; a file that changed is decoded
again. ``$CNNKIT_CACHE_DIR/decoded`` (default ``~/.cache/cnnkit/decoded``) holds one folder per data folder and
decoding (size, channels, interpolation, crop).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from cnnkit.data.decode import load_image
from cnnkit.errors import DataError


def default_decoded_dir() -> Path:
    root = os.environ.get("CNNKIT_CACHE_DIR") or Path.home() / ".cache" / "cnnkit"
    return Path(root) / "decoded"


def _identity(paths: list[Path]) -> np.ndarray:
    """(N, 2) int64: each file's size and modification time in nanoseconds (-1 for a missing file)."""
    out = np.full((len(paths), 2), -1, dtype=np.int64)
    for i, path in enumerate(paths):
        try:
            stat = path.stat()
            out[i] = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            pass
    return out


class DecodedCache:
    """The decoded pixels of ``paths`` (relative to ``root``) with one decoding, on disk. ``read(indices)`` gives
    them, decoding and storing the rows not yet filled; ``rows`` map ``paths`` to the stored array, which may hold
    more files (a run's split reuses the cache its preparation filled). Safe to pickle into DataLoader workers:
    each process maps the files itself."""

    def __init__(self, root: str | Path, paths: list[str], image_size: tuple[int, int], channels: int,
                 interpolation: str = "bilinear", crop_pct: float | None = None, cache_dir: Path | None = None):
        self.root = Path(root).resolve()
        self.decoding = (tuple(int(s) for s in image_size), int(channels), interpolation, crop_pct)
        key = hashlib.sha256(repr((str(self.root), self.decoding)).encode()).hexdigest()[:24]
        self.folder = (cache_dir or default_decoded_dir()) / key
        self.rows = self._rows(list(paths))
        self._images = self._state = None

    @property
    def shape(self) -> tuple[int, ...]:
        (h, w), c = self.decoding[0], self.decoding[1]
        return (len(self.rows), h, w, c)

    def _rows(self, paths: list[str]) -> np.ndarray:
        """Rows of ``paths`` in the stored array, made afresh when it lacks one of them; rows whose file changed
        since they were decoded are marked empty."""
        index_path = self.folder / "index.json"
        stored = None
        if index_path.exists():
            try:
                stored = json.loads(index_path.read_text())
            except (OSError, ValueError):
                stored = None
        position = {p: i for i, p in enumerate(stored["paths"])} if stored else {}
        if not stored or stored.get("decoding") != json.loads(json.dumps(self.decoding)) or \
                any(p not in position for p in paths):
            self._create(paths)
            position = {p: i for i, p in enumerate(paths)}
        rows = np.array([position[p] for p in paths], dtype=np.int64)
        state = np.load(self.folder / "state.npy", mmap_mode="r+")
        now = _identity([self.root / p for p in paths])
        changed = (state[rows, 1:] != now).any(axis=1)
        if changed.any():  # decoded from an earlier version of the file: decode it again
            state[rows[changed], 0] = 0
            state[rows[changed], 1:] = now[changed]
            state.flush()
        return rows

    def _create(self, paths: list[str]) -> None:
        """A new, empty store for ``paths`` (the images file is sparse until rows are written)."""
        tmp = self.folder.with_name(f".{self.folder.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (h, w), c = self.decoding[0], self.decoding[1]
        np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(len(paths), h, w, c)).flush()
        state = np.zeros((len(paths), 3), dtype=np.int64)  # filled, file size, file mtime (ns)
        state[:, 1:] = _identity([self.root / p for p in paths])
        np.save(tmp / "state.npy", state)
        (tmp / "index.json").write_text(json.dumps({"paths": paths, "decoding": self.decoding}))
        shutil.rmtree(self.folder, ignore_errors=True)
        os.replace(tmp, self.folder)

    def _arrays(self):
        if self._images is None:
            self._images = np.load(self.folder / "images.npy", mmap_mode="r+")
            self._state = np.load(self.folder / "state.npy", mmap_mode="r+")
        return self._images, self._state

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_images": None, "_state": None}

    def filled(self) -> int:
        return int(self._arrays()[1][self.rows, 0].sum())

    def read(self, indices) -> tuple[np.ndarray, list[str | None]]:
        """The decoded images of ``paths[indices]`` (zeros where unreadable) and, aligned, why each could not be
        read (None when it could); rows decoded here are stored for next time."""
        images, state = self._arrays()
        indices = np.asarray(indices, dtype=np.int64)
        rows = self.rows[indices]
        missing = [k for k, row in enumerate(rows) if not state[row, 0]]
        errors: list[str | None] = [None] * len(indices)
        if missing:
            paths = {k: self.root / self._path(int(indices[k])) for k in missing}
            with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
                decoded = list(pool.map(lambda k: _decode(paths[k], self.decoding), missing))
            for k, (array, error) in zip(missing, decoded):
                if error:
                    errors[k] = error
                    continue
                images[rows[k]] = array
                state[rows[k], 0] = 1
        return np.asarray(images[rows]), errors

    def _path(self, index: int) -> str:
        if not hasattr(self, "_paths"):
            self._paths = json.loads((self.folder / "index.json").read_text())["paths"]
        return self._paths[int(self.rows[index])]


def _decode(path: Path, decoding) -> tuple[np.ndarray | None, str | None]:
    (h, w), channels, interpolation, crop_pct = decoding
    try:
        return load_image(path, (h, w), channels, interpolation, crop_pct), None
    except DataError as e:
        return None, str(e)
