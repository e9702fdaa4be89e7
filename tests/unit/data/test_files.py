from pathlib import Path

import pytest

from cnnkit.data.files import scan_folder
from cnnkit.errors import DataError
from tests.conftest import write_image_folder


def test_flat_layout_lists_classes_sorted(tmp_path: Path):
    write_image_folder(tmp_path, ["b", "a", "c"], per_class=3)
    scan = scan_folder(tmp_path)
    assert scan.layout == "flat"
    assert scan.classes == ("a", "b", "c")
    assert len(scan.samples["all"]) == 9
    assert ("a/a_000.png", "a") in scan.samples["all"]


def test_presplit_layout_with_optional_val(tmp_path: Path):
    write_image_folder(tmp_path / "train", ["x", "y"], per_class=4)
    write_image_folder(tmp_path / "test", ["x", "y"], per_class=2)
    scan = scan_folder(tmp_path)
    assert scan.layout == "presplit"
    assert set(scan.samples) == {"train", "test"}
    assert len(scan.samples["test"]) == 4
    assert all(path.startswith("test/") for path, _ in scan.samples["test"])


def test_hidden_files_skipped_and_non_images_reported(tmp_path: Path, caplog):
    write_image_folder(tmp_path, ["a", "b"], per_class=2)
    (tmp_path / "a" / ".DS_Store").write_text("x")
    (tmp_path / "a" / "notes.txt").write_text("x")
    scan = scan_folder(tmp_path)
    assert len(scan.samples["all"]) == 4
    assert scan.ignored == ("a/notes.txt",)
    assert "notes.txt" in caplog.text


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("file", "is a file"),
    ("empty_class", "contains no images"),
    ("one_class", "only one class"),
    ("no_classes", "No class folders"),
    ("stray", "mixes split folders"),
])
def test_bad_folders_raise_naming_the_place(tmp_path: Path, case: str, message: str):
    root = tmp_path / "data"
    if case == "file":
        root.write_text("x")
    elif case == "empty_class":
        write_image_folder(root, ["a", "b"], per_class=2)
        (root / "empty").mkdir()
    elif case == "one_class":
        write_image_folder(root, ["only"], per_class=2)
    elif case == "no_classes":
        root.mkdir()
        (root / "loose.png").write_bytes(b"")
    elif case == "stray":
        write_image_folder(root / "train", ["a", "b"], per_class=2)
        write_image_folder(root / "extra", ["a", "b"], per_class=2)
    with pytest.raises(DataError, match=message) as info:
        scan_folder(root)
    assert str(root) in str(info.value)


def test_unknown_class_in_test_split_is_an_error(tmp_path: Path):
    write_image_folder(tmp_path / "train", ["a", "b"], per_class=2)
    write_image_folder(tmp_path / "test", ["a", "z"], per_class=2)
    with pytest.raises(DataError, match=r"\['z'\]"):
        scan_folder(tmp_path)
