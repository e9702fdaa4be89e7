"""Inputs of the classical baselines: raw pixels, or hand-crafted features computed with numpy alone.

Hand-crafted: colour and intensity histograms, a histogram of oriented gradients (HOG), local binary patterns (LBP),
edge density, and for maps and masks the foreground region's area, perimeter, centroid and normalised moments.
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
    gy, gx = np.gradient(gray)
    magnitude = np.hypot(gx, gy)
    angle = np.rad2deg(np.arctan2(gy, gx)) % 180.0
    bins = np.minimum((angle / (180.0 / HOG_BINS)).astype(int), HOG_BINS - 1)
    rows = np.array_split(np.arange(gray.shape[0]), HOG_CELLS)
    cols = np.array_split(np.arange(gray.shape[1]), HOG_CELLS)
    cells = []
    for r in rows:
        for c in cols:
            hist = np.bincount(bins[np.ix_(r, c)].ravel(), weights=magnitude[np.ix_(r, c)].ravel(), minlength=HOG_BINS)
            cells.append(hist / (np.linalg.norm(hist) + 1e-6))
    return np.concatenate(cells)


def _uniform_lbp_table() -> np.ndarray:
    """Map the 256 8-neighbour codes to 59 bins: the 58 uniform patterns, then one bin for all others."""
    table = np.full(256, 58, dtype=np.int64)
    uniform = [code for code in range(256)
               if sum(((code >> i) & 1) != ((code >> ((i + 1) % 8)) & 1) for i in range(8)) <= 2]
    table[uniform] = np.arange(len(uniform))
    return table


LBP_TABLE = _uniform_lbp_table()


def _lbp(gray: np.ndarray) -> np.ndarray:
    padded = np.pad(gray, 1, mode="edge")
    center = padded[1:-1, 1:-1]
    h, w = gray.shape
    code = np.zeros((h, w), dtype=np.int64)
    for bit, (dy, dx) in enumerate([(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]):
        code |= (padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] >= center).astype(np.int64) << bit
    return np.bincount(LBP_TABLE[code].ravel(), minlength=59) / code.size


def _otsu(gray: np.ndarray) -> float:
    hist, edges = np.histogram(gray, bins=64, range=(0, 1))
    weights = hist / max(hist.sum(), 1)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(weights)
    m0 = np.cumsum(weights * centers)
    between = (m0[-1] * w0 - m0) ** 2 / np.maximum(w0 * (1 - w0), 1e-12)
    return float(centers[int(np.argmax(between))])


def _region(gray: np.ndarray) -> np.ndarray:
    """Foreground (above Otsu's threshold): area, perimeter, centroid, normalised central moments, Hu 1 and 2."""
    mask = gray > _otsu(gray)
    h, w = mask.shape
    area = mask.mean()
    inner = np.pad(mask, 1)[2:, 1:-1] & np.pad(mask, 1)[:-2, 1:-1] & np.pad(mask, 1)[1:-1, 2:] & np.pad(mask, 1)[1:-1, :-2]
    perimeter = (mask & ~inner).sum() / np.sqrt(h * w)
    if not mask.any():
        return np.array([0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0])
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    n = float(len(ys))
    mu20, mu02, mu11 = ((ys - cy) ** 2).sum(), ((xs - cx) ** 2).sum(), ((ys - cy) * (xs - cx)).sum()
    eta20, eta02, eta11 = mu20 / n ** 2, mu02 / n ** 2, mu11 / n ** 2
    hu1, hu2 = eta20 + eta02, (eta20 - eta02) ** 2 + 4 * eta11 ** 2
    return np.array([area, perimeter, cy / h, cx / w, eta20, eta02, eta11, hu1, hu2])


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
