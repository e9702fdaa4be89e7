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


def _absolute_rows(table: Path, base: Path) -> list[list[str]]:
    with open(table, newline="") as f:
        return [[str((base / r["path"]).resolve()), r["label"]] for r in csv.DictReader(f)]


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
@pytest.mark.parametrize("where", ["absolute inside", "../ outside"])
def test_a_csv_of_absolute_or_parent_paths_trains_evaluates_and_predicts(labelled, tmp_path, where):
    table, _ = labelled
    rows = _absolute_rows(table, table.parent)
    if where == "absolute inside":  # the CSV beside its images, every path absolute
        listing = _write_csv(table.parent / "absolute.csv", rows)
    else:  # the CSV in a sibling folder, every path through ..
        (tmp_path / "lists").mkdir()
        listing = _write_csv(tmp_path / "lists" / "labels.csv",
                             [[f"../set/{Path(p).relative_to(table.parent).as_posix()}", c] for p, c in rows])
    scan = scan_folder(listing)
    assert scan.root == table.parent.resolve() / ("" if where == "absolute inside" else "images")
    run = tmp_path / "run"
    args = ["-q", "train", str(listing), "--model", "tiny_cnn", "--epochs", "1", "--no-progress", "--out", str(run)]
    assert main(args) == 0
    split = json.loads((run / "split.json").read_text())
    assert all(not Path(p).is_absolute() and ".." not in Path(p).parts
               for samples in split["splits"].values() for p, _ in samples)
    assert main(["-q", "evaluate", str(run)]) == 0
    assert (run / "metrics.json").exists()
    assert main(["-q", "predict", str(run), rows[0][0]]) == 0


def test_one_file_listed_by_two_spellings_is_listed_twice(labelled):
    table, _ = labelled
    rows = [["images/000.png", "left"], [str(table.parent / "images" / "000.png"), "left"],
            ["images/001.png", "right"]]
    with pytest.raises(DataError, match=r"images/000.png is listed twice \(rows 2 and 3\)"):
        scan_folder(_write_csv(table.parent / "twice.csv", rows))


def test_a_split_never_holds_a_path_outside_its_folder(tmp_path):
    from cnnkit.data.split import make_split

    with pytest.raises(DataError, match="outside the data folder"):
        make_split(str(tmp_path), "flat", {"all": [("/elsewhere/a.png", "a"), ("b.png", "b")]}, 0.2, 0.2, 0)


@pytest.mark.parametrize("lines, message", [
    (["a/a_000.png,a,extra", "b/b_000.png,b"], r"row 2: 3 fields for a header of 2 \(path,label\); quote a field"),
    (["a/a_000.png,Center,Scratch", "b/b_000.png,b"], "row 2: 3 fields"),
])
def test_more_fields_than_the_header_are_refused_with_the_row(tmp_path, lines, message):
    write_image_folder(tmp_path, ["a", "b"], 2)
    (tmp_path / "l.csv").write_text("path,label\n" + "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=message):
        scan_folder(tmp_path / "l.csv")


def test_an_empty_trailing_field_is_no_extra_field(tmp_path):
    write_image_folder(tmp_path, ["a", "b"], 2)
    (tmp_path / "l.csv").write_text("path,label\na/a_000.png,a,\nb/b_000.png,b,\n")
    assert scan_folder(tmp_path / "l.csv").classes == ("a", "b")


def _multi_label_rows(tmp_path: Path, labels: list[str]) -> Path:
    folders = write_image_folder(tmp_path, ["x"], len(labels))
    files = sorted(folders.rglob("*.png"))
    return _write_csv(tmp_path / "labels.csv", [[f.relative_to(tmp_path).as_posix(), label]
                                                for f, label in zip(files, labels)])


def test_a_class_of_one_image_named_like_another_is_refused_as_a_typo(tmp_path):
    table = _multi_label_rows(tmp_path, ["Center|Scratch", "Scratch", "Center", "Center|Scratchh", "", "Donut",
                                         "Donut"])
    with pytest.raises(DataError, match=r"labels.csv, row 5: class 'Scratchh' has this one image and is close to "
                                        r"class 'Scratch' \(2 images\): a typo\?"):
        scan_folder(table)


def test_a_rare_class_with_a_name_of_its_own_is_kept(tmp_path):
    scan = scan_folder(_multi_label_rows(tmp_path, ["Center|Scratch", "Scratch", "Center", "Donut", "Loc", "Loc"]))
    assert scan.classes == ("Center", "Donut", "Loc", "Scratch")  # Donut: one image, no near name; Loc: short


def test_a_typo_in_a_single_label_csv_is_refused_too(tmp_path):
    write_image_folder(tmp_path, ["a"], 5)
    rows = [[f"a/a_{i:03d}.png", label] for i, label in enumerate(["kitten", "kitten", "puppy", "puppy", "kiten"])]
    with pytest.raises(DataError, match="row 6: class 'kiten' .* close to class 'kitten'"):
        scan_folder(_write_csv(tmp_path / "labels.csv", rows))


def test_a_fifo_listed_in_a_csv_is_refused_without_opening_it(tmp_path):
    import os

    write_image_folder(tmp_path, ["a", "b"], 2)
    os.mkfifo(tmp_path / "a" / "pipe.png")
    table = _write_csv(tmp_path / "l.csv", [["a/pipe.png", "a"], ["a/a_000.png", "a"], ["b/b_000.png", "b"]])
    with pytest.raises(DataError, match="row 2: .*pipe.png is not a regular file"):
        scan_folder(table)


@pytest.mark.parametrize("content, message", [
    (b"path,label\n\xff\xfe,a\n", "not a UTF-8 text file"),
    (b"path,label\na/a_000\x00.png,a\n", r"row 2: 'a/a_000\\x00.png' is not a usable path"),
    (b'path,label\n"a/a_000.png,a\n', "row 2: empty label"),  # an open quote runs to the end
])
def test_a_csv_that_is_not_text_is_one_clean_error(tmp_path, content, message):
    write_image_folder(tmp_path, ["a", "b"], 2)
    (tmp_path / "l.csv").write_bytes(content)
    with pytest.raises(DataError, match=message):
        scan_folder(tmp_path / "l.csv")
