"""The pictures of ``cnnkit anomaly``: an image, its reconstruction and its error map, enlarged alike, the unusual
region (error above the pixel threshold) outlined on the map."""

from __future__ import annotations

import io

import numpy as np

OUTLINE = (0, 255, 0)  # green around the unusual pixels


def enlargement(image_size: tuple[int, int], side: int = 128) -> int:
    """The whole factor that brings the shorter side to at least ``side`` pixels (small images stay readable)."""
    return max(1, -(-side // min(image_size)))


def _png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _enlarged(array: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)


def image_png(pixels: np.ndarray, factor: int) -> bytes:
    """An (H, W, C) image, uint8 or floats in [0, 1], as a PNG ``factor`` times larger (nearest: pixels stay true)."""
    if pixels.dtype != np.uint8:
        pixels = np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
    return _png(_enlarged(pixels, factor))


def unusual_mask(error_map: np.ndarray, pixel_threshold: float) -> np.ndarray:
    """The segmentation: pixels whose smoothed error is above the pixel threshold."""
    return error_map > pixel_threshold


def error_png(error_map: np.ndarray, pixel_threshold: float, factor: int) -> bytes:
    """The (H, W) error map in the inferno colours, black at 0 and brightest at twice the pixel threshold (the same
    scale for every image of a run), the unusual region outlined in green."""
    from matplotlib import colormaps
    from scipy.ndimage import binary_erosion

    top = max(2.0 * pixel_threshold, 1e-12)
    colours = colormaps["inferno"](np.clip(error_map / top, 0.0, 1.0))[..., :3]
    pixels = _enlarged(np.round(colours * 255.0).astype(np.uint8), factor)
    mask = _enlarged(unusual_mask(error_map, pixel_threshold), factor)
    edge = mask & ~binary_erosion(mask, iterations=max(1, factor // 4), border_value=0)
    pixels[edge] = OUTLINE
    return _png(pixels)
