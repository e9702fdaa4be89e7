"""Labels from a CSV (path,label[,split]): the same run as class folders give, and a clear error for each bad row."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cnnkit.cli import main
from cnnkit.data.files import scan_folder
from cnnkit.errors import DataError
from tests.conftest import write_image_folder


def _write_csv(path: Path, rows: list[list[str]], header=("path", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def labelled(tmp_path) -> tuple[Path, Path]:
    """Images in one folder whose names say nothing; the labels only in the CSV beside it."""
    folders = write_image_folder(tmp_path / "src", ["left", "right", "top"], 10)
    images = tmp_path / "set" / "images"
    images.mkdir(parents=True)
    rows = []
    for i, file in enumerate(sorted(folders.rglob("*.png"))):
        (images / f"{i:03d}.png").write_bytes(file.read_bytes())
        rows.append([f"images/{i:03d}.png", file.parent.name])
    return _write_csv(tmp_path / "set" / "labels.csv", rows), folders


def test_a_csv_trains_the_run_its_class_folders_train(labelled, tmp_path):
    table, folders = labelled
    scan = scan_folder(table)
    assert scan.classes == ("left", "right", "top") and len(scan.samples["all"]) == 30
    assert scan.root == table.parent.resolve()
    args = ["-q", "train", "--model", "tiny_cnn", "--epochs", "2", "--no-progress"]
    assert main([*args[:2], str(table), *args[2:], "--out", str(tmp_path / "csv")]) == 0
    record = json.loads((tmp_path / "csv" / "config.json").read_text())
    assert record["classes"] == ["left", "right", "top"]
    assert {k: sum(v.values()) for k, v in record["data"]["counts"].items()} == {"train": 18, "val": 6, "test": 6}
    assert main(["-q", "predict", str(tmp_path / "csv"), str(table.parent / "images")]) == 0


def test_spaces_after_the_commas_are_allowed(tmp_path):
    folders = write_image_folder(tmp_path / "d", ["a", "b"], 2)
    rows = [f"{f.relative_to(tmp_path)}, {f.parent.name}" for f in sorted(folders.rglob("*.png"))]
    (tmp_path / "l.csv").write_text("path, label\n" + "\n".join(rows) + "\n")
    assert scan_folder(tmp_path / "l.csv").classes == ("a", "b")


def test_a_split_column_fixes_the_split(tmp_path):
    folders = write_image_folder(tmp_path / "d", ["a", "b"], 6)
    files = sorted(folders.rglob("*.png"))
    rows = [[str(f.relative_to(tmp_path)), f.parent.name, "test" if i % 6 == 0 else "train"] for i, f in
            enumerate(files)]
    scan = scan_folder(_write_csv(tmp_path / "l.csv", rows, ("path", "label", "split")))
    assert scan.layout == "presplit" and len(scan.samples["test"]) == 2 and len(scan.samples["train"]) == 10


@pytest.mark.parametrize("rows, header, message", [
    ([["x.png", "a"]], ("file", "label"), "no 'path' column"),
    ([["missing.png", "a"], ["a/a_000.png", "b"]], ("path", "label"), "row 2: .*missing.png does not exist"),
    ([["a/a_000.png", ""], ["a/a_001.png", "b"]], ("path", "label"), "row 2: empty label"),
        ([["a/a_000.png", "a|a"], ["a/a_001.png", "b"]], ("path", "label"), "names a label twice"),
        ([["a/a_000.png", ""], ["a/a_001.png", "b"]], ("path", "label"), "empty label"),
    ([["a/a_000.png", "a"], ["a/a_000.png", "b"]], ("path", "label"), "listed twice"),
    ([["a/a_000.png", "a", "holdout"]], ("path", "label", "split"), "split 'holdout'"),
    ([["a/a_000.png", "a"], ["a/a_001.png", "a"]], ("path", "label"), "only one label"),
    ([], ("path", "label"), "lists no images"),
])
def test_a_bad_csv_names_the_file_the_row_and_the_reason(tmp_path, rows, header, message):
    write_image_folder(tmp_path, ["a"], 2)
    table = _write_csv(tmp_path / "labels.csv", rows, header)
    with pytest.raises(DataError, match=message):
        scan_folder(table)


class _Frame:
    """The part of a pandas DataFrame that fit() reads (pandas is not a dependency of the tests)."""

    def __init__(self, rows: list[tuple[str, str]]):
        self.rows, self.columns = rows, ["path", "label"]

    def to_csv(self, *args, **kwargs):  # pragma: no cover - only its presence marks a DataFrame
        raise AssertionError("fit writes the CSV itself")

    def __getitem__(self, columns):
        assert list(columns) == ["path", "label"]
        return self

    def itertuples(self, index: bool = True):
        return iter(self.rows)


def test_fit_takes_a_dataframe_and_keeps_its_labels_in_the_run(labelled, tmp_path, monkeypatch):
    from cnnkit import ImageClassifier

    table, _ = labelled
    monkeypatch.chdir(table.parent)  # the frame's paths are relative to the working folder
    with open(table, newline="") as f:
        rows = [(r["path"], r["label"]) for r in csv.DictReader(f)]
    clf = ImageClassifier("tiny_cnn", epochs=1).fit(_Frame(rows), tmp_path / "run", verbose=False)
    kept = tmp_path / "run" / "labels.csv"
    assert clf.classes_ == ["left", "right", "top"] and kept.exists()
    assert all(Path(r["path"]).is_absolute() for r in csv.DictReader(open(kept, newline="")))
    assert clf.predict([table.parent / rows[0][0]])[0] in clf.classes_
    before = kept.read_bytes()
    with pytest.raises(Exception, match="already holds a run"):
        ImageClassifier("tiny_cnn", epochs=1).fit(_Frame(rows[:10]), tmp_path / "run", verbose=False)
    assert kept.read_bytes() == before  # the run's labels are untouched
