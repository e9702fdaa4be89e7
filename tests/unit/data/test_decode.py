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


def garbled_jpeg(path: Path, fill: bytes = b"\x00", offset: int = 200, count: int = 400) -> Path:
    """A photo-like JPEG whose compressed data, ``offset`` bytes after the scan header (SOS), is overwritten."""
    from skimage import data as samples

    buffer = io.BytesIO()
    Image.fromarray(samples.astronaut()).resize((160, 120)).save(buffer, "JPEG", quality=85)
    data = bytearray(buffer.getvalue())
    sos = data.find(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big") + offset
    data[start:start + count] = fill * count
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("fill", [b"\x00", b"A"])
def test_garbled_jpeg_data_is_unreadable_with_libjpegs_own_words(tmp_path: Path, fill):
    path = garbled_jpeg(tmp_path / "garbled.jpg", fill)
    with Image.open(path) as img:
        img.load()  # Pillow alone decodes it without a word
    with pytest.raises(DataError, match=r"garbled\.jpg: libjpeg reports corrupt data \(Corrupt JPEG data: "):
        load_image(path, (32, 32), 3)


def test_garbled_jpegs_are_left_out_by_skip_bad_and_listed(tmp_path: Path):
    from cnnkit.data.prepare import load_samples
    from cnnkit.data.preprocess import Preprocessing

    garbled_jpeg(tmp_path / "garbled.jpg")
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "good.jpg")
    preprocessing = Preprocessing((16, 16), 3, (0.5,) * 3, (0.25,) * 3)
    arrays = load_samples(tmp_path, [("garbled.jpg", "a"), ("good.jpg", "b")], ["a", "b"], preprocessing,
                          skip_bad=True)
    assert arrays.paths == ["good.jpg"] and arrays.skipped == ["garbled.jpg"]
    with pytest.raises(DataError, match="(?s)1 unreadable image.*garbled.jpg: libjpeg reports corrupt data"):
        load_samples(tmp_path, [("garbled.jpg", "a"), ("good.jpg", "b")], ["a", "b"], preprocessing)


@pytest.mark.parametrize("mode, options", [("RGB", {}), ("L", {}), ("CMYK", {}), ("RGB", {"progressive": True}),
                                           ("RGB", {"subsampling": 0, "quality": 95})])
def test_intact_jpegs_of_every_kind_still_decode(tmp_path: Path, mode, options):
    from skimage import data as samples

    picture = Image.fromarray(samples.astronaut()).resize((96, 64)).convert(mode)
    picture.save(tmp_path / "intact.jpg", **options)
    assert load_image(tmp_path / "intact.jpg", (16, 16), 3).shape == (16, 16, 3)


@pytest.mark.slow  # trains a network (or starts the CLI in subprocesses): end to end
def test_a_fifo_named_png_is_refused_or_skipped_never_waited_on(tmp_path: Path):
    """A pipe named like an image blocks whoever opens it until a writer comes: discovery skips it, decoding
    refuses it, ``predict`` and ``train`` end (each in a subprocess with a deadline, so a hang fails the test)."""
    import os
    import subprocess
    import sys

    from tests.conftest import write_image_folder

    root = write_image_folder(tmp_path / "data", ["left", "right"], 6, mode="L")
    os.mkfifo(root / "left" / "pipe.png")
    script = f"""
from pathlib import Path
from cnnkit.data.decode import load_image
from cnnkit.data.files import expand_image_paths, scan_folder
from cnnkit.errors import DataError
root = Path({str(root)!r})
assert all("pipe" not in p for p, _ in scan_folder(root).samples["all"])
assert all(p.name != "pipe.png" for p in expand_image_paths([root]))
try:
    load_image(root / "left" / "pipe.png", (8, 8), 1)
except DataError as e:
    print(e)
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    checked = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert checked.returncode == 0, checked.stderr
    assert "pipe.png: not a regular file (a pipe, socket or device)" in checked.stdout
    assert "Skipping" in checked.stderr and "pipe.png" in checked.stderr
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "f7c7ce8" / "tiny_binary"
    cnnkit = [sys.executable, "-m", "cnnkit.cli"]
    predicted = subprocess.run([*cnnkit, "predict", str(fixture), str(root / "left" / "pipe.png")],
                               capture_output=True, text=True, timeout=120, env=env)
    assert "UNREADABLE" in predicted.stdout and "not a regular file" in predicted.stderr
    trained = subprocess.run([*cnnkit, "-q", "train", str(root), "--model", "tiny_cnn", "--epochs", "1",
                              "--no-progress", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                             timeout=300, env=env)
    assert trained.returncode == 0, trained.stderr
    assert "pipe.png: not a regular file" in trained.stderr
