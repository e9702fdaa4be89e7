"""scikit-learn's handwritten digits (UCI, 1,797 real 8x8 images), shipped with scikit-learn: no download."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def export_digits(out: Path) -> dict[str, int]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    counts: dict[str, int] = {}
    for i, (values, target) in enumerate(zip(digits.images, digits.target)):
        folder = out / str(target)
        folder.mkdir(exist_ok=True)
        pixels = np.round(values / 16.0 * 255.0).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"digit_{i:04d}.png")
        counts[str(target)] = counts.get(str(target), 0) + 1
    return dict(sorted(counts.items()))
