"""Decode one image with Pillow into a fixed-size uint8 array, whatever its mode, bit depth or orientation.

Only regular files are opened (a pipe named ``x.png`` would block forever), and a JPEG whose compressed data libjpeg
calls corrupt is unreadable: Pillow decodes such data without a word (garbled bytes come out as grey or smeared
blocks), so libjpeg-turbo is asked again in its strict mode (``simplejpeg``), and its warning becomes the error."""

from __future__ import annotations

import functools
import logging
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from cnnkit.errors import DataError

GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
INTERPOLATIONS = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST,
                  "bicubic": Image.Resampling.BICUBIC}


@dataclass(frozen=True)
class ImageInfo:
    """What the header says, read without decoding the pixels."""

    width: int
    height: int
    grayscale: bool


def _fail(path: Path, reason: str) -> DataError:
    return DataError(f"Cannot read image {path}: {reason}")


def check_regular(path: Path) -> None:
    """DataError unless ``path`` is a regular file (a link to one is): a pipe, socket or device is never opened."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"Image {path} does not exist.") from None
    except (OSError, ValueError) as e:  # a link loop, a NUL in the name
        raise _fail(path, f"{getattr(e, 'strerror', None) or e}.") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path} is a folder, not an image.")
    if not stat.S_ISREG(mode):
        raise _fail(path, "not a regular file (a pipe, socket or device); only image files are read.")


def _open(path: Path) -> Image.Image:
    check_regular(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except FileNotFoundError:
        raise DataError(f"Image {path} does not exist.") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not an image.") from None
    except UnidentifiedImageError:
        raise _fail(path, "not an image format Pillow recognises (wrong extension or not an image).") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise _fail(path, f"too large to decode safely ({e}). Split it into tiles first.") from None
    except OSError as e:
        raise _fail(path, str(e)) from None


def _is_gray_palette(img: Image.Image) -> bool:
    palette = np.asarray(img.getpalette() or [], dtype=np.uint8)
    rgb = palette[: len(palette) // 3 * 3].reshape(-1, 3)
    return bool(len(rgb)) and bool((rgb == rgb[:, :1]).all())


QUARTER_TURNS = (5, 6, 7, 8)  # EXIF orientations whose picture is the stored one turned a quarter (width <-> height)


def _oriented_size(img: Image.Image, path: Path) -> tuple[int, int]:
    """(width, height) of the picture as ``load_image`` gives it, its EXIF orientation applied (``exif_transpose``
    reads the same tag), from the header alone."""
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, ValueError, SyntaxError) as e:  # load_image's exif_transpose fails on it too
        raise _fail(path, f"its EXIF data is unreadable ({e or type(e).__name__}).") from None
    return (img.height, img.width) if orientation in QUARTER_TURNS else (img.width, img.height)


def probe_image(path: str | Path) -> ImageInfo:
    """Read size and colour from the header; raise DataError if it is not an image. The size is the picture's as
    decoded (EXIF orientation applied), so that dots, regions and full-size decodes agree with the pixels."""
    path = Path(path)
    with _open(path) as img:
        gray = img.mode in GRAY_MODES or (img.mode == "P" and _is_gray_palette(img))
        width, height = _oriented_size(img, path)
        return ImageInfo(width=width, height=height, grayscale=gray)


FORMAT_RANGE = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}


def _to_8bit(img: Image.Image) -> Image.Image:
    """Return an 'L' or 'RGB' image; alpha is composited over black. High bit depths are scaled by their format's
    range (16-bit and 32-bit integers: 0..65535; float: 0..1), the same for every image, then clipped; Pillow does
    it in place of a float copy of the whole image."""
    if img.mode in FORMAT_RANGE:
        scale = 255.0 / FORMAT_RANGE[img.mode]
        return img.point(lambda v: v * scale + 0.5).convert("L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "La", "RGBA", "RGBa", "PA"):
        gray = img.mode in ("LA", "La")
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, rgba).convert("L" if gray else "RGB")
    if img.mode not in ("L", "RGB"):
        img = img.convert("L" if img.mode == "1" else "RGB")
    return img


def _resize_and_crop(img: Image.Image, height: int, width: int, crop_pct: float, resample) -> Image.Image:
    """Resize the shorter side to size / crop_pct, keeping the aspect ratio, then cut the centre (timm's eval crop).

    Only the centre is resampled (Pillow's ``box``: the source region the crop covers, in fractional pixels), which
    gives the pixels of resizing the whole image and cutting it (to a unit of rounding) for about two thirds of
    the time."""
    scale = max(height, width) / crop_pct / min(img.size)
    size = (max(width, round(img.width * scale)), max(height, round(img.height * scale)))
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    x_scale, y_scale = img.width / size[0], img.height / size[1]
    box = (left * x_scale, top * y_scale, (left + width) * x_scale, (top + height) * y_scale)
    return img.resize((width, height), resample, box=box)


def load_image(
    path: str | Path, image_size: tuple[int, int], channels: int, interpolation: str = "bilinear",
    crop_pct: float | None = None,
) -> np.ndarray:
    """Decode ``path`` to a (height, width, channels) uint8 array, EXIF orientation applied.

    ``crop_pct`` None: stretch to ``image_size`` (Keras). A number: keep the aspect ratio, resize the shorter side to
    size / crop_pct and cut the centre (the preprocessing of pretrained backbones).
    """
    path = Path(path)
    height, width = image_size
    img = _open(path)
    try:
        with img:
            if img.format == "JPEG":  # decode at a reduced scale when the file is much larger than needed
                side = int(max(height, width) / (crop_pct or 1.0)) + 1
                img.draft("L" if channels == 1 else "RGB", (side, side))
            img.load()
            if img.format in JPEG_FORMATS:
                _refuse_corrupt_jpeg(path)
            img = ImageOps.exif_transpose(img)
            return image_to_array(img, image_size, channels, interpolation, crop_pct)
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError) as e:
        reason = str(e) or type(e).__name__
        raise _fail(path, f"{reason} (truncated or corrupt file?).") from None


JPEG_FORMATS = ("JPEG", "MPO")  # MPO: a camera's JPEG with more pictures after it
log = logging.getLogger("cnnkit")


def jpeg_complaint(data: bytes) -> str | None:
    """What libjpeg says is wrong with a JPEG's data (its first warning, such as "Corrupt JPEG data: 232 extraneous
    bytes before marker 0xd9"), or None when it decodes cleanly. Decoded at 1/8 scale in grey: every coefficient is
    still read, little else is done. Data that simplejpeg cannot decode even leniently (a colour space it lacks) is
    left to Pillow, which decoded it: None."""
    try:
        import simplejpeg
    except ImportError:  # pragma: no cover - a dependency; without it, Pillow's own checks only
        log.debug("simplejpeg is not installed: corrupt JPEG data is not detected.")
        return None
    try:
        colorspace = "CMYK" if simplejpeg.decode_jpeg_header(data)[2] == "CMYK" else "GRAY"
    except ValueError:
        return None  # a header simplejpeg does not read: Pillow's decoding stands

    def decode(strict: bool) -> None:
        simplejpeg.decode_jpeg(data, colorspace=colorspace, min_factor=8, strict=strict)

    try:
        decode(strict=True)
        return None
    except ValueError as e:
        complaint = str(e).splitlines()[0] if str(e) else type(e).__name__
    try:
        decode(strict=False)
    except ValueError:  # no decoding simplejpeg can do at all: not a warning of libjpeg's
        return None
    return complaint


@functools.lru_cache(maxsize=65536)
def _file_complaint(path: str, size: int, modified: int, inode: int) -> str | None:
    with open(path, "rb") as f:
        return jpeg_complaint(f.read())


def _refuse_corrupt_jpeg(path: Path) -> None:
    """DataError naming ``path`` when libjpeg finds its data corrupt (checked once per file version and process)."""
    info = os.stat(path)
    complaint = _file_complaint(str(path), info.st_size, info.st_mtime_ns, info.st_ino)
    if complaint:
        raise _fail(path, f"libjpeg reports corrupt data ({complaint}); the pixels it would give are not the "
                          "picture's. Replace the file, or leave it out.")


def image_to_array(img: Image.Image, image_size: tuple[int, int], channels: int, interpolation: str = "bilinear",
                   crop_pct: float | None = None) -> np.ndarray:
    """A decoded Pillow image (any mode, any size) to (height, width, channels) uint8, as ``load_image`` does."""
    height, width = image_size
    img = _to_8bit(img)
    img = img.convert("L" if channels == 1 else "RGB")
    if crop_pct is not None:
        img = _resize_and_crop(img, height, width, crop_pct, INTERPOLATIONS[interpolation])
    elif img.size != (width, height):
        img = img.resize((width, height), INTERPOLATIONS[interpolation])
    array = np.asarray(img, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array
