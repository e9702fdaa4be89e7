"""The audit's inventory reports what training refuses: a JPEG whose data libjpeg calls corrupt, a pipe named x.png."""

from __future__ import annotations

import os
from pathlib import Path

from cnnkit.audit.inventory import Item, describe
from tests.unit.data.test_decode import garbled_jpeg


def test_a_garbled_jpeg_is_reported_as_unreadable_as_training_refuses_it(tmp_path: Path):
    garbled_jpeg(tmp_path / "garbled.jpg")
    item = describe(tmp_path, Item("garbled.jpg", "a", "all"))
    assert item.error.startswith("libjpeg reports corrupt data: Corrupt JPEG data")


def test_a_pipe_in_a_class_folder_is_left_out_of_the_inventory(tmp_path: Path):
    from cnnkit.audit.inventory import inventory
    from tests.conftest import write_image_folder

    write_image_folder(tmp_path, ["a", "b"], 2)
    os.mkfifo(tmp_path / "a" / "pipe.png")
    _, items = inventory(tmp_path)  # a pipe would block the read forever
    assert sorted(i.path for i in items) == ["a/a_000.png", "a/a_001.png", "b/b_000.png", "b/b_001.png"]


def test_an_exif_rotated_photo_is_described_as_training_decodes_it(tmp_path: Path):
    from tests.unit.data.test_dots import rotated_jpeg

    rotated_jpeg(tmp_path / "portrait.jpg")  # stored 96 wide and 64 high; EXIF Orientation 6 shows it 64 x 96
    item = describe(tmp_path, Item("portrait.jpg", "a", "all"))
    assert (item.meta["width"], item.meta["height"], item.meta["aspect"]) == (64, 96, round(64 / 96, 4))
