"""Uploaded images, checked before any pixel is decoded: size in bytes, type sniffed from the bytes (never the file
name), pixel count (a decompression bomb is refused from its header)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image

from cnnkit.data.decode import JPEG_FORMATS, jpeg_complaint

ACCEPTED = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "GIF": "image/gif", "TIFF": "image/tiff",
            "WEBP": "image/webp", "PPM": "image/x-portable-anymap"}


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000  # about 8,000 x 6,000: an aerial photograph, not a bomb


class UploadError(Exception):
    """An upload refused, with the HTTP status that says why (400 unreadable, 413 too large, 415 not an image)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def read_upload(data: bytes, limits: Limits, name: str = "upload") -> Image.Image:
    """The uploaded image, decoded, or UploadError saying why not."""
    if len(data) > limits.max_bytes:
        raise UploadError(413, f"{name}: {len(data) / 1e6:.1f} MB is more than the {limits.max_bytes / 1e6:.0f} MB "
                               "this server accepts.")
    if not data:
        raise UploadError(400, f"{name}: the file is empty.")
    try:
        with warnings.catch_warnings():  # the pixel limit below refuses what Pillow only warns about
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (OSError, ValueError, Image.DecompressionBombError):
        raise UploadError(415, f"{name}: not an image (accepted: {', '.join(sorted(ACCEPTED))}).") from None
    if image.format not in ACCEPTED:
        raise UploadError(415, f"{name}: {image.format} images are not accepted (accepted: "
                               f"{', '.join(sorted(ACCEPTED))}).")
    width, height = image.size
    if width * height > limits.max_pixels:
        raise UploadError(413, f"{name}: {width}x{height} pixels is more than the {limits.max_pixels:,} this server "
                               "decodes.")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as e:
        raise UploadError(400, f"{name}: the image is damaged and cannot be decoded ({e}).") from None
    complaint = jpeg_complaint(data) if image.format in JPEG_FORMATS else None
    if complaint:  # Pillow decodes garbled JPEG data without a word; libjpeg does not
        raise UploadError(400, f"{name}: the image is damaged: libjpeg reports corrupt data ({complaint}).")
    return image
