"""One validator for dots files (data/dots.py), used by every command that reads them: a dot outside the photo, a
coordinate that is no finite number, a file that is not UTF-8 text, each refused in one line naming the file, the
line and the reason, by ``scan --dots``, ``points --dots`` and ``patches --dots`` alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cnnkit.data.dots import load_dots, read_dots
from cnnkit.errors import DataError
from tests.unit.dotted_photos import blob_photo, cli

HEADER = "class_name,row,col\n"


@pytest.mark.parametrize("body, message", [
    ("blob,5,6\nblob,40,6\n", r"line 3: the dot \(40, 6\) lies outside the photo \(40x30 pixels"),
    ("blob,5,6\nblob,5,30\n", r"line 3: the dot \(5, 30\) lies outside"),
    ("blob,-1,6\n", r"line 2: the dot \(-1, 6\) lies outside"),
    ("blob,5,6\n\nblob,nan,6\n", r"line 4: row 'nan' is not a finite number"),
    ("blob,5,inf\n", r"line 2: col 'inf' is not a finite number"),
    ("blob,5,-Infinity\n", r"line 2: col '-Infinity' is not a finite number"),
    ("blob,five,6\n", r"line 2: row 'five' is not a number"),
    ("blob,5\n", r"line 2: fewer fields than the header has columns"),
    ("blob,5,6,7\n", r"line 2: more fields than the header has columns"),
    ("a/b,5,6\n", r"line 2: the class name 'a/b' cannot be a folder name"),
    ("", r"has no dots"),
])
def test_a_bad_dot_is_refused_naming_the_file_line_and_reason(tmp_path, body, message):
    (tmp_path / "dots.csv").write_text(HEADER + body)
    with pytest.raises(DataError, match=message) as error:
        load_dots(tmp_path / "dots.csv", 40, 30)
    assert str(error.value).startswith(f"Dots file {tmp_path / 'dots.csv'}") and "\n" not in str(error.value)


def test_a_photo_without_objects_may_have_a_header_alone_where_the_command_allows_it(tmp_path):
    (tmp_path / "dots.csv").write_text(HEADER)
    assert load_dots(tmp_path / "dots.csv", 40, 30, allow_empty=True) == []


def test_dots_inside_the_photo_are_read_as_numbers(tmp_path):
    (tmp_path / "dots.csv").write_text("tid,class_name,row,col,cls\n1,blob,0,0,3\n2,blob,39.5,29.9,3\n")
    assert load_dots(tmp_path / "dots.csv", 40, 30) == [("blob", 0.0, 0.0), ("blob", 39.5, 29.9)]


@pytest.mark.parametrize("content, message", [
    (HEADER.encode() + "Seelöwe,5,6\n".encode("latin-1"), "is not UTF-8 text; save it as a UTF-8 CSV"),
    (b"class_name,row,col\n\"blob,5,6\n", "is not a readable CSV|fewer fields"),
    (b"\x00\x01\x02", r"no column\(s\)"),
])
def test_a_dots_file_that_is_not_text_is_one_clean_line(tmp_path, content, message):
    (tmp_path / "dots.csv").write_bytes(content)
    with pytest.raises(DataError, match=message) as error:
        read_dots(tmp_path / "dots.csv")
    assert "\n" not in str(error.value)


def test_a_pipe_is_no_dots_file(tmp_path):
    os.mkfifo(tmp_path / "dots.csv")
    with pytest.raises(DataError, match="is not a regular file"):
        read_dots(tmp_path / "dots.csv")


@pytest.fixture(scope="module")
def dotted(tmp_path_factory) -> Path:
    photo = tmp_path_factory.mktemp("dotted") / "photo.png"
    blob_photo(photo, seed=3, count=6, size=128)
    return photo


@pytest.mark.parametrize("bad, message", [("blob,500,20", "line 8: the dot (500, 20) lies outside the photo"),
                                          ("blob,nan,20", "line 8: row 'nan' is not a finite number")])
def test_every_command_that_reads_dots_refuses_the_same_file_alike(untrained_detector, dotted, tmp_path, capsys,
                                                                   bad, message):
    dots = tmp_path / "dots.csv"
    dots.write_text(dotted.with_suffix(".csv").read_text() + bad + "\n")
    commands = {"scan": ("scan", untrained_detector, dotted, "--dots", dots, "--out", tmp_path / "scan"),
                "points": ("points", dotted, "--dots", dots, "--out", tmp_path / "points", "--crop", "64"),
                "patches": ("patches", dotted, "--dots", dots, "--out", tmp_path / "patches", "--size", "16")}
    for name, args in commands.items():
        code, _, err = cli(*args, capsys=capsys)
        assert code == 1 and f"{dots}, {message}" in err and len(err.strip().splitlines()) == 1, (name, err)
    assert not (tmp_path / "scan").exists() and not (tmp_path / "points").exists()


def test_a_scan_counts_dots_outside_its_region_apart_and_none_outside_the_photo(untrained_detector, dotted,
                                                                                  tmp_path, capsys):
    import json

    code, _, err = cli("scan", untrained_detector, dotted, "--dots", dotted.with_suffix(".csv"), "--region", "0:64",
                       "--out", tmp_path / "scan", capsys=capsys)
    assert code == 0, err
    settings = json.loads((tmp_path / "scan" / "scan.json").read_text())
    inside = sum(1 for _, row, _ in read_dots(dotted.with_suffix(".csv")) if row < 64)
    assert settings["dots_outside_region"] == 6 - inside


def rotated_jpeg(path: Path) -> tuple[int, int]:
    """A camera's portrait photo: 96 rows x 64 columns as shown, stored as 64 x 96 (landscape) with EXIF Orientation
    6 (turn 90 degrees clockwise to show). A yellow disk at (70, 20) as shown; its dots file beside it. The shown
    picture's (height, width)."""
    import numpy as np
    from PIL import ExifTags, Image

    shown = np.full((96, 64, 3), 60, np.uint8)
    rows, cols = np.mgrid[0:96, 0:64]
    shown[np.hypot(rows - 70, cols - 20) < 6] = (230, 220, 60)
    stored = Image.fromarray(shown).rotate(90, expand=True)  # counter-clockwise: Orientation 6 turns it back
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    stored.save(path, quality=95, exif=exif)
    path.with_suffix(".csv").write_text(HEADER + "blob,70,20\n")
    return shown.shape[:2]


def test_dots_of_an_exif_rotated_photo_are_checked_against_the_picture_as_decoded(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from cnnkit.data.decode import load_image, probe_image
    from cnnkit.training.point_data import load_dotted

    photo = tmp_path / "portrait.jpg"
    height, width = rotated_jpeg(photo)
    with Image.open(photo) as stored:
        assert stored.size == (height, width)  # the header's: width 96, height 64
    info = probe_image(photo)
    assert (info.height, info.width) == (height, width) == load_image(photo, (96, 64), 3).shape[:2]

    dotted = load_dotted(photo, photo.with_suffix(".csv"), None, crop=32, cell=8)  # row 70 is past the header's 64
    assert dotted.pixels.shape == (96, 64, 3) and dotted.dots == [(70.0, 20.0)]
    assert tuple(dotted.pixels[70, 20]) > (180, 180, 0) and dotted.pixels[70, 20, 2] < 120  # the disk, not stretched

    beyond = tmp_path / "beyond.csv"  # inside the stored 64 x 96, outside the picture as shown
    beyond.write_text(HEADER + "blob,20,80\n")
    with pytest.raises(DataError, match=r"line 2: the dot \(20, 80\) lies outside the photo \(96x64 pixels"):
        load_dots(beyond, info.height, info.width)
    code, _, err = cli("patches", photo, "--dots", beyond, "--out", tmp_path / "refused", "--size", "16",
                       capsys=capsys)
    assert code == 1 and "the dot (20, 80) lies outside the photo (96x64 pixels" in err

    code, _, err = cli("patches", photo, "--dots", photo.with_suffix(".csv"), "--out", tmp_path / "patches",
                       "--size", "16", "--backgrounds", "0", capsys=capsys)
    assert code == 0, err
    patch = next((tmp_path / "patches" / "blob").glob("*.png"))
    centre = np.asarray(Image.open(patch).convert("RGB"))[8, 8]
    assert centre[0] > 180 and centre[2] < 120  # cut around the disk where the dot says
