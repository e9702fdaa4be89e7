"""A run's own images, found again elsewhere: by path, and by decoded pixels (a copy under another name is the same
image). Evaluation leaves the train and val images out of a score; suggestions leave every labelled image out of
what to label next."""

from __future__ import annotations

import hashlib

import numpy as np

from cnnkit._io import read_json, write_json
from cnnkit.data.prepare import decode_images
from cnnkit.data.preprocess import Preprocessing
from cnnkit.run.folder import RunFolder


def pixel_digest(image: np.ndarray) -> str:
    """A decoded image's identity: the same pixels under any name or format give the same digest."""
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()[:24]


def split_paths(run: RunFolder, splits: tuple[str, ...]) -> dict[str, set[str]]:
    """The resolved paths of each of ``splits``'s images (a split the manifest lacks is empty)."""
    manifest = run.read_split()
    root = run.data_root(manifest)
    return {name: {str((root / p).resolve()) for p, _ in manifest.splits.get(name, [])} for name in splits}


def split_digests(run: RunFolder, preprocessing: Preprocessing, splits: tuple[str, ...]) -> dict[str, set[str]]:
    """Pixel digests of each of ``splits``'s images (decoded as the run decodes), computed once for every split of
    the manifest and kept in ``RUN/index/``; empty sets when the run's data is gone (paths alone then compare)."""
    manifest = run.read_split()
    key = {"split": hashlib.sha256(run.split_path.read_bytes()).hexdigest()[:16],
           "preprocessing": repr(preprocessing.to_dict()), "splits": sorted(manifest.splits)}
    cache = run.index_dir / "seen-digests.json"
    try:
        stored = read_json(cache)
        if stored.get("key") == key:
            return {name: set(stored["digests"].get(name, ())) for name in splits}
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        pass
    root = run.data_root(manifest)
    if not root.is_dir():
        return {name: set() for name in splits}
    digests: dict[str, set[str]] = {}
    for name, samples in manifest.splits.items():
        paths, digests[name] = [root / p for p, _ in samples], set()
        for start in range(0, len(paths), 256):  # a chunk at a time: memory does not grow with the split
            images, _ = decode_images(paths[start:start + 256], preprocessing, skip_bad=True)
            digests[name] |= {pixel_digest(image) for image in images}
    write_json(cache, {"key": key, "digests": {name: sorted(d) for name, d in digests.items()}})
    return {name: digests.get(name, set()) for name in splits}

