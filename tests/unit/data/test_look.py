"""A quick look at a data set: colour decided by the pixels (R = G = B is gray, whatever the file's mode), sizes
from the headers; photographs are colour or larger than 64 px."""

import numpy as np
import pytest
from PIL import Image

from cnnkit.data.files import scan_folder
from cnnkit.data.look import is_colour, look_at
from tests.conftest import write_image_folder


@pytest.mark.parametrize("mode, size, colour, photos", [("L", 16, False, False), ("RGB", 16, False, False),
                                                          ("RGBA", 28, False, False), ("colour", 16, True, True),
                                                          ("L", 96, False, True)])
def test_photographs_are_told_from_small_grayscale_images(tmp_path, mode, size, colour, photos):
    look = look_at(scan_folder(write_image_folder(tmp_path / "data", ["a", "b"], 6, size=size, mode=mode)))
    assert (look.colour, look.photos, look.median_side) == (colour, photos, size)


def test_a_gray_jpeg_saved_as_rgb_is_gray_and_a_faint_tint_is_colour(tmp_path):
    gray = np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)
    Image.fromarray(gray).convert("RGB").save(tmp_path / "gray.jpg", quality=85)
    assert not is_colour(np.asarray(Image.open(tmp_path / "gray.jpg").convert("RGB")))
    tinted = np.stack([gray, gray, (gray * 0.9).astype(np.uint8)], axis=-1)
    assert is_colour(tinted)


def test_a_tenth_of_colour_images_makes_a_colour_set(tmp_path):
    data = write_image_folder(tmp_path / "data", ["a", "b"], 9, size=16, mode="L")
    write_image_folder(tmp_path / "data", ["a", "b"], 1, size=16, mode="colour", seed=1)  # overwrites one each
    assert look_at(scan_folder(data)).colour
