"""Class probabilities over a whole photograph: the dense network in tiles, or the naive sliding-window loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnnkit.config.commands import SCAN_METHODS
from cnnkit.config.parse import Region
from cnnkit.data.decode import image_to_array, load_image, probe_image
from cnnkit.data.preprocess import Preprocessing, normalize
from cnnkit.errors import CnnkitError, ConfigError, DataError, check_choice
from cnnkit.models.precision import bf16_supported
from cnnkit.progress import Progress
from cnnkit.scan.dense import DenseNet, dense_network


class ScanStopped(CnnkitError):
    """A scan stopped between two tiles because its caller's ``should_stop`` said so (a server's deadline passed,
    its client went away, it is shutting down)."""

    def __init__(self, done: int, total: int, unit: str = "tiles"):
        super().__init__(f"The scan was stopped after {done} of its {total} {unit}.")
        self.done, self.total, self.unit = done, total, unit


def check_stop(should_stop: Callable[[], bool] | None, done: int, total: int, unit: str = "tiles") -> None:
    """Raise ``ScanStopped`` when ``should_stop`` (None: never) says so; called before each tile."""
    if should_stop is not None and should_stop():
        raise ScanStopped(done, total, unit)


@dataclass
class ScanResult:
    probabilities: np.ndarray  # (classes, rows, cols): window (i, j) starts at (i * stride, j * stride)
    stride: int
    window: tuple[int, int]
    seconds: float
    exact: bool
    method: str
    precision: str = "32"  # "bf16" when the dense scan ran in bfloat16 (then never ``exact``)
    names: np.ndarray | None = None  # a point detector that names classes: (its classes, rows, cols) probabilities

    def centre(self, i: int, j: int) -> tuple[float, float]:
        """Pixel (row, col) of the centre of window (i, j)."""
        return i * self.stride + self.window[0] / 2.0, j * self.stride + self.window[1] / 2.0


def load_photo(path: str | Path, channels: int, scale: float = 1.0, region: Region | None = None,
               grayscale_ok: bool = False) -> np.ndarray:
    """The whole photograph (or its ``region``) as (H, W, C) uint8, optionally resized by ``scale`` (to the patches'
    pixel size). A grayscale photo for a colour model is refused unless ``grayscale_ok`` (then repeated to 3
    channels, as a point detector's training does)."""
    info = probe_image(path)
    if info.grayscale and channels == 3 and not grayscale_ok:
        raise DataError(f"{path} is a grayscale photo, but the model was trained on colour patches: its colour "
                        "features would see nothing. Scan colour photos, or train on grayscale patches "
                        "(`channels` 1).")
    if scale <= 0:
        raise ConfigError(f"Expected `scale` > 0. Received: {scale}")
    top, bottom, left, right = (region or Region()).bounds(info.height, info.width, path)
    size = (max(1, round((bottom - top) * scale)), max(1, round((right - left) * scale)))
    limit = Image.MAX_IMAGE_PIXELS or 2**31
    if size[0] * size[1] > limit:
        raise ConfigError(f"`scale` {scale} makes {path} {size[1]}x{size[0]} pixels, above the {limit:,} that "
                          "decoding allows; use a smaller scale, or cut the photo into parts.")
    if region is None:
        return np.array(load_image(path, size, channels, "bilinear"))  # writable: torch shares its memory
    whole = load_image(path, (info.height, info.width), channels, "bilinear")[top:bottom, left:right]
    if size == whole.shape[:2]:
        return np.array(whole)
    return np.array(image_to_array(Image.fromarray(whole[..., 0] if channels == 1 else whole), size, channels))


def to_input(photo: np.ndarray, preprocessing: Preprocessing) -> torch.Tensor:
    """A (H, W, C) uint8 photo or tile as the network's standardised (1, C, H, W) input."""
    x = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)[None].float() / 255.0
    return normalize(x, preprocessing)


def grid_size(length: int, window: int, stride: int) -> int:
    return (length - window) // stride + 1


@torch.no_grad()
def dense_scan(dense: DenseNet, photo: np.ndarray, preprocessing: Preprocessing, tile: int = 512,
               progress: bool | None = None, should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """Probabilities (classes, rows, cols) computed in tiles of about ``tile`` pixels that overlap by what each
    window needs (its own extent, plus the receptive field for padded networks); stitched, they equal one pass over
    the whole photo. ``should_stop`` is asked before each tile (``ScanStopped`` when it says yes)."""
    (wh, ww), s, m = dense.window, dense.stride, dense.margin
    height, width = photo.shape[:2]
    rows, cols = grid_size(height, wh, s), grid_size(width, ww, s)
    per_tile = max(1, (max(tile, max(wh, ww) + 2 * m) - max(wh, ww)) // s + 1)
    out = None
    tiles = [(a, b) for a in range(0, rows, per_tile) for b in range(0, cols, per_tile)]
    bar = Progress(len(tiles), "scan", unit="tiles", enabled=progress if len(tiles) > 4 else False)
    for done, (a, b) in enumerate(tiles):
        check_stop(should_stop, done, len(tiles))
        a2, b2 = min(a + per_tile, rows), min(b + per_tile, cols)
        top, left = max(0, a * s - m), max(0, b * s - m)
        bottom, right = min(height, (a2 - 1) * s + wh + m), min(width, (b2 - 1) * s + ww + m)
        logits = dense(to_input(photo[top:bottom, left:right], preprocessing))[0]
        if out is None:
            out = np.zeros((logits.shape[0], rows, cols), np.float32)
        di, dj = (a * s - top) // s, (b * s - left) // s
        out[:, a:a2, b:b2] = torch.softmax(logits.float(), 0)[:, di:di + a2 - a, dj:dj + b2 - b].numpy()
        bar.update(1)
    bar.close()
    return out


@torch.no_grad()
def sliding_scan(model: torch.nn.Module, photo: np.ndarray, preprocessing: Preprocessing, window: tuple[int, int],
                 stride: int, batch_size: int = 256, should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """The reference: cut every window and classify it alone, batch by batch (``should_stop`` asked before each)."""
    wh, ww = window
    rows, cols = grid_size(photo.shape[0], wh, stride), grid_size(photo.shape[1], ww, stride)
    positions = [(i, j) for i in range(rows) for j in range(cols)]
    out = None
    for start in range(0, len(positions), batch_size):
        check_stop(should_stop, start // batch_size, -(-len(positions) // batch_size), "batches of windows")
        chunk = positions[start:start + batch_size]
        crops = np.stack([photo[i * stride:i * stride + wh, j * stride:j * stride + ww] for i, j in chunk])
        x = normalize(torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0, preprocessing)
        probabilities = torch.softmax(model(x), 1).numpy()
        if out is None:
            out = np.zeros((probabilities.shape[1], rows, cols), np.float32)
        for (i, j), p in zip(chunk, probabilities):
            out[:, i, j] = p
    return out


def scan(model: torch.nn.Module, preprocessing: Preprocessing, photo: np.ndarray, stride: int | None = None,
         mode: str = "dense", tile: int = 512, precision: str = "32",
         should_stop: Callable[[], bool] | None = None) -> ScanResult:
    """Scan ``photo`` with the patch classifier ``model`` (trained on ``preprocessing.image_size`` patches).
    ``should_stop`` (optional) is asked between tiles, or batches of windows: a yes stops the scan with
    ``ScanStopped`` (a server's deadline, its client gone)."""
    window = tuple(preprocessing.image_size)
    if photo.shape[0] < window[0] or photo.shape[1] < window[1]:
        raise DataError(f"The photo ({photo.shape[0]}x{photo.shape[1]}) is smaller than one patch "
                        f"({window[0]}x{window[1]}); nothing to scan.")
    dense = dense_network(model, preprocessing.channels, window, stride)
    start = time.perf_counter()
    check_choice("precision", precision, ("auto", "32", "bf16"), "scan")
    bf16 = precision == "bf16" or (precision == "auto" and bf16_supported("cpu"))  # scans run on the CPU
    if mode == "dense":
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            probabilities = dense_scan(dense, photo, preprocessing, tile, should_stop=should_stop)
    elif mode == "sliding":
        probabilities = sliding_scan(model.eval(), photo, preprocessing, window, dense.stride,
                                     should_stop=should_stop)
    else:
        check_choice("mode", mode, SCAN_METHODS, "scan")
    bf16 = bf16 and mode == "dense"
    return ScanResult(probabilities, dense.stride, window, time.perf_counter() - start, dense.exact and not bf16,
                      mode, "bf16" if bf16 else "32")
