"""What a person reads: every command that writes has a default place for it and says where that is, numbers are
rounded, and paths inside the working folder are shown relative to it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from cnnkit.cli import main


def run_cli(*args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]*"', "", html))


@pytest.fixture(scope="module")
def work(tmp_path_factory, pattern_data: Path) -> Path:
    """A working folder holding a copy of the data and a run trained on it."""
    from cnnkit.config import TrainConfig
    from cnnkit.training.fit import train

    work = tmp_path_factory.mktemp("work")
    shutil.copytree(pattern_data, work / "photos")
    train(work / "photos", work / "runs" / "tiny", TrainConfig(model="tiny_cnn", epochs=1, batch_size=16),
          progress=False)
    return work


@pytest.fixture
def here(work: Path, monkeypatch) -> Path:
    monkeypatch.chdir(work)
    return work


def test_inspect_writes_into_the_run_by_default_and_says_where(here, capsys):
    code, out, err = run_cli("inspect", "runs/tiny", "photos/left/left_000.png", capsys=capsys)
    assert code == 0, err
    folder = Path("runs/tiny/inspect/left_000")
    assert (folder / "inspect.html").exists() and (folder / "inspect.json").exists()
    assert f"Page: {folder / 'inspect.html'}" in out
    assert not Path("runs/tiny/.lock").exists()  # the run's lock was held for the write and let go
    page = visible_text((folder / "inspect.html").read_text())
    assert "Run runs/tiny;" in page and str(here) not in page


def test_scan_writes_into_the_run_by_default_and_says_where(here, capsys):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save("field.png")
    code, out, err = run_cli("-q", "scan", "runs/tiny", "field.png", "--min-distance", "4", capsys=capsys)
    assert code == 0, err
    folder = Path("runs/tiny/scan-field")
    assert (folder / "scan.json").exists() and not Path("runs/tiny/.lock").exists()
    assert f"in {folder}" in out


def test_patches_go_to_runs_photo_patches_by_default(here, capsys):
    from tests.unit.patches.test_patches import dotted_photo

    (here / "dotted").mkdir()
    photo, dots, _ = dotted_photo(here / "dotted")
    code, out, err = run_cli("-q", "patches", photo, "--dots", dots, "--size", "24", capsys=capsys)
    assert code == 0, err
    folder = Path("runs") / f"{photo.stem}-patches"
    assert (folder / "manifest.csv").exists() and f"Patches in {folder} " in out
    assert f"Next: cnnkit train {folder} " in out


def test_audit_writes_runs_data_audit_by_default_with_numbers_rounded(here, capsys):
    code, out, err = run_cli("-q", "audit", "photos", "--features", "pixels", capsys=capsys)
    assert code == 0, err
    folder = Path("runs/photos-audit")
    assert f"Report: {folder / 'audit.html'}  (all findings: {folder / 'audit.json'})" in out
    found = json.loads((folder / "audit.json").read_text())
    medians = [v for c in found["metadata"]["per_class"].values() for k, v in c.items()
               if k.startswith("median_") and v is not None]
    assert medians and all(round(v, 2) == v for v in medians)  # a median of two is no 104.35499999999999
    page = visible_text((folder / "audit.html").read_text())
    assert not re.search(r"\d\.\d{3,}", page), re.search(r"\S*\d\.\d{3,}\S*", page)[0]
    assert str(here) not in page


def test_lr_find_writes_runs_data_lr_find_by_default(here, capsys):
    code, out, err = run_cli("-q", "lr-find", "photos", "--model", "tiny_cnn", "--batches", "10", "--batch-size", "16",
                             capsys=capsys)
    assert code == 0, err
    folder = Path("runs/photos-lr-find")
    assert sorted(p.name for p in folder.iterdir()) == ["lr_find.json", "lr_find.png"]
    assert f"Plot: {folder / 'lr_find.png'}" in out


def test_a_csv_of_labels_names_the_default_folder_by_its_folder_and_name(tmp_path):
    from cnnkit.cli.options import default_out

    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "labels.csv").write_text("path,label\n")
    assert default_out(tmp_path / "photos" / "labels.csv", "audit") == Path("runs/photos-labels-audit")
    assert default_out(tmp_path / "photos", "lr-find") == Path("runs/photos-lr-find")


def test_evaluate_shows_the_data_relative_to_the_working_folder(here, capsys):
    code, out, err = run_cli("evaluate", "runs/tiny", capsys=capsys)
    assert code == 0, err
    assert "test split of photos" in err and "test split of photos:" in out and str(here) not in out + err
    page = visible_text(Path("runs/tiny/report.html").read_text())
    assert "Data: test split of photos" in page and "photos (flat layout)" in page and str(here) not in page
    record = json.loads(Path("runs/tiny/config.json").read_text())
    assert Path(record["data"]["root"]).is_absolute()  # the record keeps the path that works from anywhere


def test_paths_outside_the_working_folder_stay_whole(tmp_path, monkeypatch):
    from cnnkit._io import shown_path, shown_paths

    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    inside, outside = tmp_path / "work" / "photos", tmp_path / "workshop" / "photos"
    assert shown_path(inside) == "photos" and shown_path(outside) == str(outside) and shown_path("a/b") == "a/b"
    assert shown_path(tmp_path / "work") == "."
    assert shown_paths(f"test split of {inside}, not {outside}") == f"test split of photos, not {outside}"
    assert shown_paths(f"run {tmp_path / 'work'}; done") == "run .; done"
