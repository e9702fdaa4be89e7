"""An audit reports what training refuses, and audits the rest: on each data set below `cnnkit train` stops with its
message, and `cnnkit audit` finishes, names the same problem among its findings (audit.json, audit.html, the printed
summary), and still finds the copies, the unreadable file and each class's sizes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnnkit.audit.inventory import inventory
from cnnkit.audit.refusals import training_refusals
from cnnkit.cli import main
from tests.conftest import write_image_folder


def audited(data: Path, out: Path, capsys) -> tuple[dict, str]:
    code = main(["-q", "audit", str(data), "--out", str(out), "--features", "pixels"])
    printed, err = capsys.readouterr()
    assert code == 0, err
    return json.loads((out / "audit.json").read_text()), printed


def training_refusal(data: Path, out: Path, capsys) -> str:
    """What `cnnkit train` says, refusing ``data`` (exit 1, one error line)."""
    code = main(["-q", "train", str(data), "--model", "tiny_cnn", "--epochs", "1", "--out", str(out)])
    _, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("cnnkit: error:")]
    assert code == 1 and len(errors) == 1, err
    return errors[0]


def findings(found: dict) -> dict[str, str]:
    return {x["finding"]: x["detail"] for x in found["training_refuses"]}


@pytest.fixture()
def one_class(tmp_path: Path) -> Path:
    """cat/: 5 images, a copy of the first and a file that is no PNG; dog/: an empty folder."""
    data = write_image_folder(tmp_path / "data", ["cat"], 5)
    shutil.copy(data / "cat" / "cat_000.png", data / "cat" / "copy.png")
    (data / "cat" / "broken.png").write_bytes(b"not a png")
    (data / "dog").mkdir()
    return data


def test_one_class_and_an_empty_class_folder_are_reported_and_the_rest_audited(one_class, tmp_path, capsys):
    assert "Class folder" in training_refusal(one_class, tmp_path / "run", capsys)
    found, printed = audited(one_class, tmp_path / "audit", capsys)
    assert findings(found) == {
        "one class": "one class ('cat'): training needs at least two classes; add a class folder (or label) of "
                     "other images",
        "empty class folder": f"class folder {one_class / 'dog'} holds no images: training refuses it; remove the "
                              "folder or add images",
        "unreadable images": "1 unreadable image(s) (listed under unreadable): training refuses them; fix or "
                             "remove them, or leave them out with `skip_bad`"}
    assert found["summary"]["training_refuses"] == 3
    assert [g["files"] for g in found["exact_duplicates"]] == [["cat/cat_000.png", "cat/copy.png"]]
    assert [u["file"] for u in found["unreadable"]] == ["cat/broken.png"]
    assert found["metadata"]["per_class"]["cat"]["images"] == 6
    assert found["metadata"]["per_class"]["cat"]["median_width"] == 16
    assert "training refuses: one class: one class ('cat')" in printed
    assert "What training refuses (3)" in (tmp_path / "audit" / "audit.html").read_text()

    (one_class / "dog").rmdir()
    assert "Found only one class ('cat')" in training_refusal(one_class, tmp_path / "run2", capsys)
    assert set(findings(audited(one_class, tmp_path / "audit", capsys)[0])) == {"one class", "unreadable images"}


def test_classes_too_small_for_a_validation_split_and_conflicting_copies_are_reported(tmp_path, capsys):
    data = write_image_folder(tmp_path / "data", ["cat", "dog"], 2)
    shutil.copy(data / "cat" / "cat_000.png", data / "dog" / "dog_001.png")  # one picture labelled cat and dog
    assert "No validation images" in training_refusal(data, tmp_path / "run", capsys)
    found, printed = audited(data, tmp_path / "audit", capsys)
    assert list(findings(found)) == ["no validation images"]
    assert "every class is too small to give it one; training refuses it" in findings(found)["no validation images"]
    assert found["summary"]["groups_crossing_classes"] == 1  # the conflicting copies, which training warns about
    assert "training refuses: no validation images" in printed and "raise --val-fraction" in printed


def test_a_class_too_small_to_be_validated_is_named(tmp_path):
    data = write_image_folder(tmp_path / "data", ["cat", "dog", "fox"], 10)
    for extra in sorted((data / "fox").iterdir())[2:]:
        extra.unlink()
    scan, items = inventory(data)
    assert [(x["finding"], x["detail"].split(":")[0]) for x in training_refusals(data, scan, items)] == [
        ("class too small for validation", "class 'fox' has 2 image(s)")]


def test_images_without_class_folders_are_reported_and_audited_as_one_class(tmp_path, capsys):
    data = write_image_folder(tmp_path / "source", ["cat"], 4) / "cat"
    assert "No class folders" in training_refusal(data, tmp_path / "run", capsys)
    found, _ = audited(data, tmp_path / "audit", capsys)
    assert list(findings(found)) == ["no class folders"]
    assert findings(found)["no class folders"].startswith(f"the 4 images lie directly in {data}, with no class folders")
    assert found["images"] == 4 and found["classes"] == ["cat"]


def test_a_data_set_where_nothing_decodes_is_audited_and_each_file_named(tmp_path, capsys):
    for name in ("cat", "dog"):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / f"{name}.png").write_bytes(b"not a png")
    assert "unreadable image(s)" in training_refusal(tmp_path / "data", tmp_path / "run", capsys)
    found, _ = audited(tmp_path / "data", tmp_path / "audit", capsys)
    assert list(findings(found)) == ["unreadable images"] and found["features"] == "none: no image could be read"
    assert [u["file"] for u in found["unreadable"]] == ["cat/cat.png", "dog/dog.png"]


def labels_csv(tmp_path: Path, labels: list[str]) -> Path:
    """A CSV of labels beside its images (path,label), one image per label given."""
    images = sorted(write_image_folder(tmp_path / "images", ["any"], len(labels)).rglob("*.png"))
    rows = "".join(f"{image.relative_to(tmp_path).as_posix()},{label}\n" for image, label in zip(images, labels))
    (tmp_path / "labels.csv").write_text("path,label\n" + rows)
    return tmp_path / "labels.csv"


def test_a_csvs_likely_typo_and_its_single_label_are_reported(tmp_path, capsys):
    typo = labels_csv(tmp_path / "typo", ["Scratch"] * 4 + ["Center"] * 4 + ["Scratchh"])
    assert "class 'Scratchh' has this one image and is close to class 'Scratch'" in training_refusal(
        typo, tmp_path / "run", capsys)
    found, _ = audited(typo, tmp_path / "audit", capsys)
    assert findings(found)["likely typo of a class name"] == (
        "class 'Scratchh' has one image (images/any/any_008.png) and is close to class 'Scratch' (4 images): a "
        "typo? training refuses it; correct its row in labels.csv, or label more images 'Scratchh'")
    assert found["classes"] == ["Center", "Scratch", "Scratchh"]

    single = labels_csv(tmp_path / "single", ["cat"] * 4)
    assert "has only one label ('cat')" in training_refusal(single, tmp_path / "run2", capsys)
    found, _ = audited(single, tmp_path / "audit2", capsys)
    assert list(findings(found)) == ["one class"] and found["images"] == 4
