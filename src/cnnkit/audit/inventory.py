"""Every image of a data set with its class, split, file and pixel digests, perceptual hash and metadata."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from cnnkit.data.decode import JPEG_FORMATS, jpeg_complaint
from cnnkit.data.files import scan_folder
from cnnkit.data.layout import FolderScan
from cnnkit.progress import Progress

# the luminance quantization table of JPEG's standard at quality 50 (ITU T.81, Annex K), in zigzag order's sum
_STANDARD_LUMA_SUM = 4630


@dataclass
class Item:
    path: str  # relative to the data folder
    label: str
    split: str  # train, val, test, or "all" (a flat folder without a run)
    file_sha256: str = ""
    pixels_sha256: str = ""
    dhash: int = 0
    thumbnail: bytes = b""  # 16x16 grayscale, for the pixel agreement of near-duplicate candidates
    meta: dict = field(default_factory=dict)
    error: str | None = None


def _dhash(gray: Image.Image) -> int:
    """The 64-bit difference hash: is each pixel brighter than its right neighbour, on a 9x8 thumbnail."""
    small = np.asarray(gray.resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def jpeg_quality(image: Image.Image) -> int | None:
    """An estimate of a JPEG's quality (1-100) from its luminance quantization table; None for other formats."""
    tables = getattr(image, "quantization", None)
    if image.format != "JPEG" or not tables:
        return None
    total = sum(tables.get(0, []))
    scale = 100.0 * total / _STANDARD_LUMA_SUM
    quality = (200 - scale) / 2 if scale <= 100 else 5000 / scale
    return int(np.clip(round(quality), 1, 100))


def describe(root: Path, item: Item) -> Item:
    """Fill ``item`` from its file: digests, hash and metadata, or the reason it cannot be read."""
    path = root / item.path
    try:
        data = path.read_bytes()
        with Image.open(path) as image:
            image.load()
            fmt, mode, quality = image.format, image.mode, jpeg_quality(image)
            rgb = ImageOps.exif_transpose(image).convert("RGB")  # as training decodes it (data.decode.load_image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        item.error = f"{type(e).__name__}: {e}"
        return item
    complaint = jpeg_complaint(data) if fmt in JPEG_FORMATS else None
    if complaint:  # what training refuses (data.decode), the audit reports
        item.error = f"libjpeg reports corrupt data: {complaint}"
        return item
    pixels = np.asarray(rgb)
    item.file_sha256 = hashlib.sha256(data).hexdigest()
    item.pixels_sha256 = hashlib.sha256(repr(pixels.shape).encode() + pixels.tobytes()).hexdigest()
    gray = rgb.convert("L")
    item.dhash = _dhash(gray)
    item.thumbnail = np.asarray(gray.resize((16, 16), Image.Resampling.BILINEAR), dtype=np.uint8).tobytes()
    item.meta = {"width": rgb.width, "height": rgb.height, "aspect": round(rgb.width / rgb.height, 4),
                 "mode": mode, "format": fmt or "unknown", "jpeg_quality": quality, "bytes": len(data),
                 "brightness": round(float(pixels.mean()), 2), "contrast": round(float(pixels.std()), 2)}
    return item


def inventory(data: str | Path, splits: dict[str, str] | None = None,
              progress: bool = False) -> tuple[FolderScan, list[Item]]:
    """The data folder's (or CSV's) scan and its images; ``splits`` (path -> split, a run's) replaces the folder's
    own. What training refuses but can be looked at (one class, empty class folders, images with no class folders,
    a CSV's likely typo of a class name) is scanned, for the audit to report (``audit.refusals``)."""
    scan = scan_folder(data, min_classes=1, loose_images=True, report_refusals=True)
    items = [Item(path, label, (splits or {}).get(path, split if split != "all" else "all"))
             for split, found in scan.samples.items() for path, label in found]
    with Progress(len(items), "audit: read images", enabled=progress) as bar:
        for item in items:
            describe(scan.root, item)
            bar.update(1)
    return scan, items
