"""A square window of an image centred on a pixel: what `cnnkit patches` cuts for training and `scan --verify`
classifies around a detection, the same way."""

from __future__ import annotations

import numpy as np


def centred_window(photo: np.ndarray, row: int, col: int, size: int) -> np.ndarray:
    """The ``size`` x ``size`` window of an (H, W, C) image centred on (row, col) (its centre pixel is index
    size // 2), black where it leaves the image."""
    out = np.zeros((size, size, photo.shape[2]), dtype=photo.dtype)
    top, left = row - size // 2, col - size // 2
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + size, photo.shape[0]), min(left + size, photo.shape[1])
    if r1 > r0 and c1 > c0:
        out[r0 - top:r1 - top, c0 - left:c1 - left] = photo[r0:r1, c0:c1]
    return out
