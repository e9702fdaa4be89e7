"""Uploads are checked as files on disk are: a JPEG whose data libjpeg calls corrupt is refused (400)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from cnnkit.serve.limits import Limits
from cnnkit.serve.uploads import UploadError, check_scan_size, open_upload, read_upload
from tests.unit.data.test_decode import garbled_jpeg


def test_a_garbled_jpeg_upload_is_refused_with_libjpegs_reason(tmp_path: Path):
    data = garbled_jpeg(tmp_path / "garbled.jpg").read_bytes()
    with pytest.raises(UploadError, match=r"photo.jpg: the image is damaged: libjpeg reports corrupt data") as error:
        read_upload(data, Limits(), "photo.jpg")
    assert error.value.status == 400


def test_an_intact_jpeg_upload_decodes(tmp_path: Path):
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(buffer, "JPEG")
    assert read_upload(buffer.getvalue(), Limits()).size == (40, 30)


def test_a_decompression_bomb_is_too_large_413_not_an_unknown_format():
    """20000x20000 pixels in 49 kB of PNG: more than twice Pillow's own limit, which it refuses while opening."""
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, "PNG")
    with pytest.raises(UploadError) as error:
        open_upload(buffer.getvalue(), Limits(), "bomb.png")
    assert error.value.status == 413
    assert str(error.value).startswith("bomb.png: 400,000,000 pixels from 0.0") and "(a decompression bomb)" in str(
        error.value) and "the 50,000,000 this server decodes" in str(error.value)


def test_a_photo_over_the_scan_budget_is_refused_from_its_header_naming_both_sizes():
    buffer = io.BytesIO()
    Image.new("RGB", (7000, 7000), (30, 30, 30)).save(buffer, "PNG")
    image = open_upload(buffer.getvalue(), Limits(), "huge.png")  # within the 50 megapixels a prediction takes
    with pytest.raises(UploadError) as error:
        check_scan_size(image, Limits(max_scan_pixels=25_000_000), "huge.png")
    assert error.value.status == 413 and str(error.value).startswith(
        "huge.png: 7000x7000 pixels (49,000,000) is more than the 25,000,000 a scan takes here (`max_scan_pixels`)")
    check_scan_size(image, Limits(max_scan_pixels=49_000_000), "huge.png")  # at the budget: taken


def test_an_exif_rotated_upload_is_decoded_upright_as_the_same_file_is(tmp_path: Path):
    """A phone's portrait photo (stored 96 wide and 64 high, EXIF Orientation 6 turns it): the server's pixels are
    the ones `cnnkit predict` and `cnnkit scan` decode from the file."""
    import numpy as np

    from cnnkit.data.decode import load_image
    from tests.unit.data.test_dots import rotated_jpeg

    photo = tmp_path / "portrait.jpg"
    height, width = rotated_jpeg(photo)
    decoded = read_upload(photo.read_bytes(), Limits(), "portrait.jpg")
    assert (decoded.height, decoded.width) == (height, width) == (96, 64)
    assert np.array_equal(np.asarray(decoded.convert("RGB")), load_image(photo, (height, width), 3))
