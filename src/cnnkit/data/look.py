"""A quick look at a data set before anything is decoded in full: are these photographs or small grayscale images?

The default model is chosen from this (``training.defaults``): a few dozen images, decoded small, are enough to
tell colour from gray by the pixels (a gray picture saved as RGB has R = G = B), and the headers give the sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.data.decode import load_image, probe_image
from cnnkit.data.layout import FolderScan
from cnnkit.errors import DataError

SAMPLE = 48  # images decoded to look at their colour
HEADERS = 400  # headers read for the median size
SMALL_SIDE = 64  # the longer side up to which grayscale images count as small
COLOUR_LEVELS = 2.0  # mean |R-G| + |G-B| (of 255) above which an image counts as colour (JPEG noise stays below)


@dataclass(frozen=True)
class DataLook:
    """What a sample of the images shows."""

    colour: bool  # at least a tenth of the sampled images have colour in their pixels
    median_side: int  # the median longer side, in pixels
    sampled: int

    @property
    def photos(self) -> bool:
        """Colour, or larger than small: a pretrained backbone's kind of input."""
        return self.colour or self.median_side > SMALL_SIDE

    def describe(self) -> str:
        colour = "colour" if self.colour else "grayscale"
        return f"{colour} images, median longer side {self.median_side} px"


def is_colour(pixels: np.ndarray) -> bool:
    """Whether an RGB array has colour in it, by its pixels rather than its file's mode."""
    if pixels.ndim < 3 or pixels.shape[-1] < 3:
        return False
    p = pixels.astype(np.int16)
    return float(np.abs(p[..., 0] - p[..., 1]).mean() + np.abs(p[..., 1] - p[..., 2]).mean()) > COLOUR_LEVELS


def _spread(items: list, limit: int) -> list:
    """At most ``limit`` items spread evenly over the list (every class represented in a sorted listing)."""
    if len(items) <= limit:
        return items
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, limit)]


def look_at(scan: FolderScan) -> DataLook:
    """Sizes from up to ``HEADERS`` headers, colour from up to ``SAMPLE`` images decoded at 32 x 32; unreadable
    files are left to the decoding that follows, which names them."""
    paths = [scan.root / rel for found in scan.samples.values() for rel, _ in found]
    sides = []
    for path in _spread(paths, HEADERS):
        try:
            info = probe_image(path)
        except DataError:
            continue
        sides.append(max(info.width, info.height))
    coloured = sampled = 0
    for path in _spread(paths, SAMPLE):
        try:
            pixels = load_image(Path(path), (32, 32), 3)
        except DataError:
            continue
        sampled += 1
        coloured += is_colour(pixels)
    median = int(np.median(sides)) if sides else 0
    return DataLook(colour=sampled > 0 and coloured * 10 >= sampled, median_side=median, sampled=sampled)
