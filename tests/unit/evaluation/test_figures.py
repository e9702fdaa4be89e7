"""Figures people read: image grids of photographs stay small enough for a report under 1 MB."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from cnnkit.plots import THUMBNAIL, image_grid_png, thumbnail


def test_a_grid_of_sixteen_photographs_stays_small_and_keeps_their_shapes():
    rng = np.random.default_rng(0)
    smooth = np.linspace(0, 255, 300, dtype=np.float32)
    photos = np.stack([np.clip(smooth[None, :, None] * rng.uniform(0.3, 1, 3) + rng.normal(0, 12, (300, 300, 3)),
                               0, 255).astype(np.uint8) for _ in range(16)])
    png = image_grid_png(photos, [f"photo {i}\ntrue a\npredicted b (0.9)" for i in range(16)])
    assert len(png) < 300_000  # 16 raw 300x300 photos hold 4.3 MB
    assert Image.open(io.BytesIO(png)).format == "PNG"
    wide = thumbnail(np.zeros((200, 400, 3), np.uint8))
    assert wide.shape == (THUMBNAIL // 2, THUMBNAIL, 3)
    small = np.zeros((16, 16, 1), np.uint8)
    assert thumbnail(small) is small  # small images are enlarged when drawn, never resampled here
