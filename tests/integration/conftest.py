"""Fixtures of the end-to-end tests beside tests/conftest.py's: a run trained on `cnnkit patches` output, which
the server offers to scan with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def patch_run(tmp_path_factory) -> Path:
    """A run trained on `cnnkit patches` output; its background folder is named "ground", so only the patches
    manifest tells that it was trained on patches."""
    import csv

    from cnnkit.config import PatchConfig, TrainConfig
    from cnnkit.patches import make_patches
    from cnnkit.training.fit import train

    root = tmp_path_factory.mktemp("patch-run")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 50, (120, 160, 3)).astype(np.uint8)
    dots = [("seal", 20 + 25 * (i // 5), 20 + 28 * (i % 5)) for i in range(15)]
    for _, row, col in dots:
        pixels[row - 3:row + 4, col - 3:col + 4] = (230, 200, 40)
    Image.fromarray(pixels).save(root / "photo.png")
    with open(root / "dots.csv", "w", newline="") as f:
        csv.writer(f).writerows([("class_name", "row", "col"), *dots])
    make_patches([root / "photo.png"], [root / "dots.csv"], root / "patches",
                 PatchConfig(size=16, per_dot=2, jitter=2, radius=10, background_class="ground"))
    out = root / "run"
    train(root / "patches", out, TrainConfig(model="tiny_cnn", epochs=1, batch_size=16, lr=0.01), progress=False)
    return out
