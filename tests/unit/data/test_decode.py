import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.data.decode import load_image, probe_image
from cnnkit.errors import DataError


def _gradient(size=(12, 16)) -> np.ndarray:
    return np.tile(np.linspace(0, 255, size[1]).astype(np.uint8), (size[0], 1))


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "1", "LA", "CMYK", "I;16", "I"])
def test_every_mode_decodes_to_8bit_of_the_requested_shape(tmp_path: Path, mode: str):
    gray = _gradient()
    if mode == "I;16":
        image = Image.fromarray(gray.astype(np.uint16) * 257)
    elif mode == "I":
        image = Image.fromarray(gray.astype(np.int32) * 257)
    else:
        image = Image.fromarray(gray, mode="L").convert(mode)
    path = tmp_path / ("img.tif" if mode in ("CMYK", "I") else "img.png")
    image.save(path)
    for channels in (1, 3):
        array = load_image(path, (8, 10), channels)
        assert array.shape == (8, 10, channels) and array.dtype == np.uint8
        if mode in ("L", "I;16", "I", "LA"):  # high bit depths are scaled, not clipped: the gradient survives
            assert array[..., 0].max() > 200 and array[..., 0].min() < 40


def test_16bit_values_are_scaled_not_clipped(tmp_path: Path):
    values = np.full((4, 4), 32768, dtype=np.uint16)  # mid-grey in 16 bits
    Image.fromarray(values).save(tmp_path / "a.png")
    assert abs(int(load_image(tmp_path / "a.png", (4, 4), 1).mean()) - 128) <= 1


def test_alpha_is_composited_over_black(tmp_path: Path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:, :2, 3] = 255  # left half opaque white, right half transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    array = load_image(tmp_path / "a.png", (4, 4), 3)
    assert (array[:, :2] == 255).all() and (array[:, 2:] == 0).all()


def test_exif_orientation_is_applied(tmp_path: Path):
    image = Image.new("L", (20, 10), 0)
    image.paste(255, (0, 0, 10, 10))  # left half white, stored landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image.save(tmp_path / "a.jpg", exif=exif, quality=95)
    array = load_image(tmp_path / "a.jpg", (20, 10), 1)[..., 0]  # displayed portrait: 20 high, 10 wide
    assert array[:10].mean() > 200 and array[10:].mean() < 50  # the white half is now on top


def test_probe_reports_grayscale(tmp_path: Path):
    Image.new("L", (5, 7)).save(tmp_path / "g.png")
    Image.new("RGB", (5, 7)).save(tmp_path / "c.png")
    Image.new("L", (5, 7)).convert("P").save(tmp_path / "p.png")
    assert probe_image(tmp_path / "g.png").grayscale and probe_image(tmp_path / "p.png").grayscale
    info = probe_image(tmp_path / "c.png")
    assert not info.grayscale and (info.width, info.height) == (5, 7)


def test_truncated_file_names_file_and_reason(tmp_path: Path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(DataError, match=r"cut\.jpg.*truncated"):
        load_image(path, (8, 8), 3)


def test_non_image_with_image_extension(tmp_path: Path):
    path = tmp_path / "fake.png"
    path.write_text("this is text")
    with pytest.raises(DataError, match=r"fake\.png.*not an image"):
        probe_image(path)
    with pytest.raises(DataError, match=r"fake\.png"):
        load_image(path, (8, 8), 1)


def test_huge_image_is_refused_with_a_clear_reason(tmp_path: Path, monkeypatch):
    Image.new("L", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataError, match=r"big\.png.*too large"):
        load_image(tmp_path / "big.png", (8, 8), 1)


def test_missing_file(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        load_image(tmp_path / "nope.png", (8, 8), 1)


def test_16_bit_and_float_images_are_scaled_by_their_formats_range(tmp_path: Path):
    """The same value decodes the same in every image: 16-bit by 0..65535, float by 0..1 (not each image's max)."""
    values = {}
    for name, value in (("low", 200), ("high", 300), ("top", 65535), ("half", 32768)):
        Image.fromarray(np.full((8, 8), value, np.uint16)).save(tmp_path / f"{name}.png")
        values[name] = int(load_image(tmp_path / f"{name}.png", (4, 4), 1)[0, 0, 0])
    assert values == {"low": 1, "high": 1, "top": 255, "half": 128}
    Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(tmp_path / "float.tif")
    Image.fromarray(np.full((8, 8), 7.0, np.float32)).save(tmp_path / "bright.tif")
    assert load_image(tmp_path / "float.tif", (4, 4), 1)[0, 0, 0] == 128
    assert load_image(tmp_path / "bright.tif", (4, 4), 1)[0, 0, 0] == 255  # clipped, not rescaled by its maximum
