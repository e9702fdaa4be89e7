"""Uploads are checked as files on disk are: a JPEG whose data libjpeg calls corrupt is refused (400)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from cnnkit.serve.uploads import Limits, UploadError, read_upload
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
