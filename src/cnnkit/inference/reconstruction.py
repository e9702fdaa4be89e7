"""How far an autoencoder's reconstruction is from its input: a score per image and an error map per pixel. Training
chooses the anomaly thresholds with it on the validation split, and ``cnnkit anomaly`` scores new images the same way."""

from __future__ import annotations

import numpy as np

SMOOTHING = 1.0  # sigma of the error map's Gaussian smoothing, in pixels: one stray pixel is noise, a blob is not
QUANTILE = 0.99  # the anomaly thresholds: this quantile of the validation split's errors


def reconstruction_errors(images: np.ndarray, reconstructions: np.ndarray,
                          smoothing: float = SMOOTHING) -> tuple[np.ndarray, np.ndarray]:
    """(score per image: the mean squared error over pixels and channels, in [0, 1] units; error map per image
    (N, H, W): the squared error averaged over channels, Gaussian-smoothed by ``smoothing`` pixels) for uint8
    ``images`` (N, H, W, C) and their reconstructions in [0, 1]."""
    from scipy.ndimage import gaussian_filter

    squared = ((images.astype(np.float32) / 255.0 - reconstructions.astype(np.float32)) ** 2).mean(axis=3)
    scores = squared.reshape(len(squared), -1).mean(axis=1)
    maps = gaussian_filter(squared, sigma=(0, smoothing, smoothing), mode="nearest") if smoothing else squared
    return scores.astype(np.float64), maps.astype(np.float32)


def anomaly_thresholds(scores: np.ndarray, peaks: np.ndarray, quantile: float = QUANTILE) -> tuple[float, float]:
    """(image threshold: the ``quantile`` of the images' scores; pixel threshold: the ``quantile`` of ``peaks``, each
    image's highest error-map value), both from normal images: about 1 - ``quantile`` of normal images are called
    anomalous, or have any pixel outlined."""
    if not len(scores):
        raise ValueError("no images to choose anomaly thresholds on")
    return float(np.quantile(scores, quantile)), float(np.quantile(peaks, quantile))
