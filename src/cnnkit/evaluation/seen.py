"""Images a run was trained or validated on, found again in a folder someone evaluates: by path, and by decoded
pixels (a copy under another name is the same image). Scoring them would make the score dishonest."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from cnnkit._io import read_json, write_json
from cnnkit.data.prepare import ImageArrays, decode_images
from cnnkit.inference import Predictor
from cnnkit.run import RunFolder

log = logging.getLogger("cnnkit")
SEEN_SPLITS = ("train", "val")


def pixel_digest(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()[:24]


def _split_digests(run: RunFolder, predictor: Predictor) -> dict[str, set[str]]:
    """Pixel digests of the run's train and val images (decoded as the run decodes), cached in ``RUN/index/``."""
    key = {"split": hashlib.sha256(run.split_path.read_bytes()).hexdigest()[:16],
           "preprocessing": repr(predictor.preprocessing.to_dict())}
    cache = run.index_dir / "seen-digests.json"
    try:
        stored = read_json(cache)
        if stored.get("key") == key:
            return {name: set(stored["digests"][name]) for name in SEEN_SPLITS}
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        pass
    manifest = run.read_split()
    root = run.data_root(manifest)
    if not root.is_dir():
        return {name: set() for name in SEEN_SPLITS}  # the run's data is gone: paths alone are compared
    digests = {}
    for name in SEEN_SPLITS:
        paths, digests[name] = [root / p for p, _ in manifest.splits.get(name, [])], set()
        for start in range(0, len(paths), 256):  # a chunk at a time: memory does not grow with the split
            images, _ = decode_images(paths[start:start + 256], predictor.preprocessing, skip_bad=True)
            digests[name] |= {pixel_digest(image) for image in images}
    write_json(cache, {"key": key, "digests": {name: sorted(d) for name, d in digests.items()}})
    return digests


def seen_in_training(run: RunFolder, predictor: Predictor, arrays: ImageArrays) -> tuple[np.ndarray, dict]:
    """A mask of the evaluated images the run trained or validated on, and how many of each split."""
    manifest = run.read_split()
    root = run.data_root(manifest)
    paths = {name: {str((root / p).resolve()) for p, _ in manifest.splits.get(name, [])} for name in SEEN_SPLITS}
    digests = _split_digests(run, predictor)
    evaluated = [(str((Path(arrays.root) / p).resolve()), pixel_digest(image))
                 for p, image in zip(arrays.paths, arrays.images)]
    found = {name: np.array([path in paths[name] or digest in digests[name] for path, digest in evaluated], bool)
             for name in SEEN_SPLITS}
    mask = found["train"] | found["val"] if len(evaluated) else np.zeros(0, bool)
    return mask, {name: int(found[name].sum()) for name in SEEN_SPLITS}
