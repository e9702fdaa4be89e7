"""Inputs of the classical baselines: raw pixels, or hand-crafted features.

Hand-crafted: colour and intensity histograms, a histogram of oriented gradients (HOG), local binary patterns (LBP),
edge density, and for maps and masks the foreground region (Otsu's threshold) with its area, perimeter, centroid and
normalised moments; HOG, LBP, Otsu, the perimeter and the moments are scikit-image's.
"""

from __future__ import annotations

import numpy as np

HIST_BINS = 16
HOG_CELLS = 4  # a 4x4 grid of cells
HOG_BINS = 9  # unsigned orientations, 20 degrees each


def pixel_features(images: np.ndarray) -> np.ndarray:
    """(N, H*W*C) pixels scaled to [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def _gray(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float64) / 255.0
    return x[..., 0] if x.shape[-1] == 1 else x @ np.array([0.299, 0.587, 0.114])


def _histograms(image: np.ndarray, gray: np.ndarray) -> list[np.ndarray]:
    out = [np.histogram(gray, bins=HIST_BINS, range=(0, 1))[0] / gray.size]
    if image.shape[-1] == 3:
        out += [np.histogram(image[..., c], bins=HIST_BINS, range=(0, 256))[0] / gray.size for c in range(3)]
    return out


def _hog(gray: np.ndarray) -> np.ndarray:
    """scikit-image's HOG on a HOG_CELLS x HOG_CELLS grid of cells, each cell's histogram L2-normalised."""
    from skimage.feature import hog

    cell = (max(1, gray.shape[0] // HOG_CELLS), max(1, gray.shape[1] // HOG_CELLS))
    return hog(gray, orientations=HOG_BINS, pixels_per_cell=cell, cells_per_block=(1, 1), block_norm="L2",
               feature_vector=True)


def _lbp(gray: np.ndarray) -> np.ndarray:
    """The histogram of scikit-image's 8-neighbour uniform LBP codes: 58 uniform patterns and one bin for the rest."""
    from skimage.feature import local_binary_pattern

    codes = local_binary_pattern(np.round(gray * 255).astype(np.uint8), 8, 1, method="nri_uniform")
    return np.bincount(codes.astype(np.int64).ravel(), minlength=59) / codes.size


def _region(gray: np.ndarray) -> np.ndarray:
    """Foreground (above Otsu's threshold): area, perimeter, centroid, normalised central moments, Hu 1 and 2, with
    scikit-image's ``threshold_otsu``, ``perimeter`` and moments."""
    from skimage.filters import threshold_otsu
    from skimage.measure import moments_central, moments_hu, moments_normalized, perimeter

    mask = gray > (threshold_otsu(gray) if gray.min() < gray.max() else gray.max())
    h, w = mask.shape
    if not mask.any():
        return np.array([0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0])
    ys, xs = np.nonzero(mask)
    nu = moments_normalized(moments_central(mask.astype(np.float64), order=3), order=3)
    hu = moments_hu(nu)
    return np.array([mask.mean(), perimeter(mask) / np.sqrt(h * w), ys.mean() / h, xs.mean() / w,
                     nu[2, 0], nu[0, 2], nu[1, 1], hu[0], hu[1]])


def handcrafted_features(images: np.ndarray) -> np.ndarray:
    """(N, D) hand-crafted features of (N, H, W, C) uint8 images."""
    rows = []
    for image in images:
        gray = _gray(image)
        gy, gx = np.gradient(gray)
        magnitude = np.hypot(gx, gy)
        edges = np.array([(magnitude > 0.05).mean(), (magnitude > 0.15).mean()])
        rows.append(np.concatenate([*_histograms(image, gray), _hog(gray), _lbp(gray), edges, _region(gray)]))
    return np.asarray(rows, dtype=np.float32)
