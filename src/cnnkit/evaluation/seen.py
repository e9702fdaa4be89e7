"""Images a run was trained or validated on, found again in a folder someone evaluates: by path, and by decoded
pixels (a copy under another name is the same image). Scoring them would make the score dishonest."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from cnnkit.data.prepare import ImageArrays
from cnnkit.inference import Predictor
from cnnkit.run import RunFolder
from cnnkit.run.seen import pixel_digest, split_digests, split_paths

log = logging.getLogger("cnnkit")
SEEN_SPLITS = ("train", "val")


def seen_in_training(run: RunFolder, predictor: Predictor, arrays: ImageArrays) -> tuple[np.ndarray, dict]:
    """A mask of the evaluated images the run trained or validated on, and how many of each split."""
    paths = split_paths(run, SEEN_SPLITS)
    digests = split_digests(run, predictor.preprocessing, SEEN_SPLITS)
    evaluated = [(str((Path(arrays.root) / p).resolve()), pixel_digest(image))
                 for p, image in zip(arrays.paths, arrays.images)]
    found = {name: np.array([path in paths[name] or digest in digests[name] for path, digest in evaluated], bool)
             for name in SEEN_SPLITS}
    mask = found["train"] | found["val"] if len(evaluated) else np.zeros(0, bool)
    return mask, {name: int(found[name].sum()) for name in SEEN_SPLITS}
