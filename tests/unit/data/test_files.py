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


def test_symlinked_folders_inside_a_class_are_followed(tmp_path: Path):
    from tests.conftest import write_image_folder

    data = write_image_folder(tmp_path / "data", ["a", "b"], 2)
    elsewhere = write_image_folder(tmp_path / "more", ["a"], 3, seed=4)
    (data / "a" / "linked").symlink_to(elsewhere / "a", target_is_directory=True)
    (data / "a" / "loop").symlink_to(data / "a", target_is_directory=True)  # a link back up is walked once
    scan = scan_folder(data)
    found = [p for p, c in scan.samples["all"] if c == "a"]
    assert len(found) == 5 and sum(p.startswith("a/linked/") for p in found) == 3


def test_one_class_is_enough_where_labels_only_name_vectors(tmp_path: Path):
    from tests.conftest import write_image_folder

    data = write_image_folder(tmp_path / "data", ["only"], 3)
    assert scan_folder(data, min_classes=1).classes == ("only",)
    with pytest.raises(DataError, match="only one class"):
        scan_folder(data)
