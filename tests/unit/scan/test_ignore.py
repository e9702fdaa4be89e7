"""``scan --ignore`` names classes of the scanning run: a name it does not have is refused, never silently kept."""

from __future__ import annotations

from tests.unit.dotted_photos import blob_photo, cli


def test_ignoring_a_class_the_run_does_not_have_is_refused_naming_its_classes(untrained_detector, tmp_path, capsys):
    photo = tmp_path / "photo.png"
    blob_photo(photo, count=3, size=96)
    code, _, err = cli("scan", untrained_detector, photo, "--ignore", "nosuchclass", "--out", tmp_path / "scan",
                       capsys=capsys)
    assert code == 1 and "--ignore names 'nosuchclass', not a class of" in err and "its classes: animal" in err
    assert not (tmp_path / "scan").exists()
