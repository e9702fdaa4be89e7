"""Uploaded images, checked before any pixel is decoded: size in bytes, type sniffed from the bytes (never the file
name), pixel count (a decompression bomb is refused from its header, 413), and for a scan the scan's pixel budget.
Decoding comes after, in the request's own work (``decode_upload``)."""

from __future__ import annotations

import io
import re
import warnings

from PIL import Image, ImageOps

from cnnkit.data.decode import JPEG_FORMATS, jpeg_complaint
from cnnkit.serve.limits import Limits, megabytes

ACCEPTED = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "GIF": "image/gif", "TIFF": "image/tiff",
            "WEBP": "image/webp", "PPM": "image/x-portable-anymap"}


class UploadError(Exception):
    """An upload refused, with the HTTP status that says why (400 unreadable, 413 too large, 415 not an image)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def open_upload(data: bytes, limits: Limits, name: str = "upload") -> Image.Image:
    """The uploaded image with its header read and nothing decoded, or UploadError saying why not."""
    if len(data) > limits.max_bytes:
        raise UploadError(413, f"{name}: {megabytes(len(data))} is more than the {megabytes(limits.max_bytes)} "
                               "this server accepts.")
    if not data:
        raise UploadError(400, f"{name}: the file is empty.")
    try:
        with warnings.catch_warnings():  # the pixel limit below refuses what Pillow only warns about
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:  # Pillow's own limit, twice its warning's: a bomb, too large (413)
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(pixels[1]):,} pixels" if pixels else "more pixels than Pillow decodes"
        raise UploadError(413, f"{name}: {size} from {megabytes(len(data))} of data (a decompression bomb) is more "
                               f"than the {limits.max_pixels:,} this server decodes.") from None
    except (OSError, ValueError):
        raise UploadError(415, f"{name}: not an image (accepted: {', '.join(sorted(ACCEPTED))}).") from None
    if image.format not in ACCEPTED:
        raise UploadError(415, f"{name}: {image.format} images are not accepted (accepted: "
                               f"{', '.join(sorted(ACCEPTED))}).")
    width, height = image.size
    if width * height > limits.max_pixels:
        raise UploadError(413, f"{name}: {width}x{height} pixels is more than the {limits.max_pixels:,} this server "
                               "decodes.")
    return image


def check_scan_size(image: Image.Image, limits: Limits, name: str = "upload") -> None:
    """Refuse (413) a photo over the scan's pixel budget, from its header: shrinking it instead would make its objects
    smaller than in the patches the run learned on, and the counts wrong without a word."""
    width, height = image.size
    if width * height > limits.max_scan_pixels:
        raise UploadError(413, f"{name}: {width}x{height} pixels ({width * height:,}) is more than the "
                               f"{limits.max_scan_pixels:,} a scan takes here (`max_scan_pixels`); scan a part of it, "
                               "or the whole photo with `cnnkit scan`, which has no such limit.")


def decode_upload(image: Image.Image, data: bytes, name: str = "upload") -> Image.Image:
    """The pixels of an image ``open_upload`` checked, its EXIF orientation applied as ``load_image`` applies it to
    a file (a phone's portrait photo is predicted and scanned upright, as ``cnnkit predict`` and ``cnnkit scan``
    see it), or UploadError (400) when they cannot be decoded."""
    try:
        image.load()
        complaint = jpeg_complaint(data) if image.format in JPEG_FORMATS else None
        if not complaint:
            ImageOps.exif_transpose(image, in_place=True)  # no copy of a large photo that needs no turn
            return image
    except (OSError, ValueError, SyntaxError) as e:
        raise UploadError(400, f"{name}: the image is damaged and cannot be decoded ({e}).") from None
    # Pillow decodes garbled JPEG data without a word; libjpeg does not
    raise UploadError(400, f"{name}: the image is damaged: libjpeg reports corrupt data ({complaint}).")


def read_upload(data: bytes, limits: Limits, name: str = "upload") -> Image.Image:
    """The uploaded image, checked and decoded, or UploadError saying why not."""
    return decode_upload(open_upload(data, limits, name), data, name)
