"""Scanning a photograph with a point detector (``scan/points.py``, ``cnnkit scan``): its centre map in tiles, its
threshold (stored, or chosen against the dots), a region in the photo's pixels, a detector that names classes naming
each detection by its cell, a verifier renaming detections, and the settings of a patch classifier refused."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from cnnkit.config.parse import parse_region
from cnnkit.run import RunFolder
from cnnkit.scan.points import centre_map, load_point_detector, point_maps
from cnnkit.scan.windows import load_photo
from tests.unit.dotted_photos import CELL, blob_photo, cli, untrained_point_detector
from tests.unit.scan.test_verify import FixedVerifier


def test_a_scan_with_a_point_detector_uses_its_map_and_its_threshold(untrained_detector, tmp_path, capsys):
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1)
    code, out, err = cli("scan", untrained_detector, photo, "--dots", photo.with_suffix(".csv"), "--out",
                         tmp_path / "s", "--precision", "32", capsys=capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "s" / "scan.json").read_text())
    assert summary["method"] == "points" and summary["stride"] == 8 and summary["grid"] == [64, 64]
    assert summary["threshold"] == 0.3 and summary["min_distance"] == 16.0
    assert "centre map, a cell every 8 px" in out and "all objects" in out
    assert "blob " not in out  # one class-agnostic detector: no per-class rows without `verify`
    heat = np.load(tmp_path / "s" / "heatmap_animal.npy")
    assert heat.shape == (64, 64) and 0.0 < heat.min() <= heat.max() < 1.0
    code, _, err = cli("scan", untrained_detector, photo, "--out", tmp_path / "s2", "--detection-threshold", "0.05",
                       capsys=capsys)
    assert code == 0 and json.loads((tmp_path / "s2" / "scan.json").read_text())["threshold"] == 0.05


def test_a_point_detectors_threshold_is_chosen_against_every_dot_and_stored(tmp_path, capsys):
    run = untrained_point_detector(tmp_path / "run")
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1, label="pup")  # the dots' class is not the detector's label
    code, _, err = cli("scan", run, photo, "--dots", photo.with_suffix(".csv"), "--region", "0:256", "--out",
                       tmp_path / "s", "--choose-thresholds", capsys=capsys)
    assert code == 0, err
    stored = RunFolder(run).read_record().scan_thresholds
    assert set(stored.per_class) == {"animal"} and "in region 0:256" in stored.source
    chosen = stored.per_class["animal"]
    assert chosen != 0.5  # 0.5 is what a class without dots keeps: the dots of class pup were used
    code, _, _ = cli("scan", run, photo, "--out", tmp_path / "s2", capsys=capsys)
    assert code == 0 and json.loads((tmp_path / "s2" / "scan.json").read_text())["threshold"] == {"animal": chosen}


def test_the_centre_map_in_tiles_is_close_to_one_pass(untrained_detector):
    net, record = load_point_detector(untrained_detector)
    photo = np.random.default_rng(0).integers(0, 255, (2200, 200, 3), dtype=np.uint8)
    tiled = centre_map(net, record, photo)
    with torch.no_grad():
        x = (torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255.0 - 0.5) / 0.5
        whole = torch.sigmoid(net(x))[0, 0].numpy()
    assert tiled.shape == (275, 25)
    assert np.abs(tiled - whole).max() < 0.02
    assert np.abs(tiled[:240] - whole[:240]).max() < 1e-4  # the first tile saw all it needed below


def test_a_point_detector_with_a_verifier_reports_per_class(untrained_detector, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("cnnkit.scan.photo.load_verifier", lambda run: FixedVerifier("pup", side=32))
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1, label="pup")
    code, out, err = cli("scan", untrained_detector, photo, "--dots", photo.with_suffix(".csv"), "--out",
                         tmp_path / "s", "--detection-threshold", "0.05", "--verify", "anything", capsys=capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "s" / "dots.json").read_text())
    assert set(report) == {"pup"} and report["pup"]["dots"] == 25 and "pup -> pup" in out


def test_a_verifier_renames_what_a_detector_that_names_classes_found(tmp_path, capsys, monkeypatch):
    run = untrained_point_detector(tmp_path / "run", by_class=True)
    monkeypatch.setattr("cnnkit.scan.photo.load_verifier", lambda run: FixedVerifier("pup", side=32))
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1, second="cyan")
    code, out, err = cli("scan", run, photo, "--out", tmp_path / "s", "--detection-threshold", "0.05", "--verify", "anything",
                         capsys=capsys)
    counts = json.loads((tmp_path / "s" / "counts.json").read_text())
    assert code == 0 and counts["pup"] > 0 and "blob" not in counts and "cyan" not in counts, (err, counts)
    code, out, err = cli("scan", run, photo, "--out", tmp_path / "k", "--detection-threshold", "0.05", "--verify", "anything",
                         "--verify-keeps-class", capsys=capsys)
    counts = json.loads((tmp_path / "k" / "counts.json").read_text())
    assert code == 0 and set(counts) == {"blob", "cyan"}, (err, counts)  # the detector's own names kept


def test_a_verifier_that_keeps_the_class_leaves_a_point_detector_class_agnostic(untrained_detector, tmp_path,
                                                                              capsys, monkeypatch):
    monkeypatch.setattr("cnnkit.scan.photo.load_verifier", lambda run: FixedVerifier("pup", side=32))
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1, label="pup")
    code, out, err = cli("scan", untrained_detector, photo, "--dots", photo.with_suffix(".csv"), "--out",
                         tmp_path / "s", "--detection-threshold", "0.05", "--verify", "anything", "--verify-keeps-class",
                         capsys=capsys)
    assert code == 0, err
    assert not (tmp_path / "s" / "dots.json").exists() and "all objects" in out  # no per-class rows of "animal"
    assert json.loads((tmp_path / "s" / "counts.json").read_text()).keys() == {"animal"}


def test_a_point_detectors_detections_in_a_region_stay_in_the_photos_pixels(untrained_detector, tmp_path, capsys):
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1)
    for name, region in (("whole", []), ("part", ["--region", "256:,128:"])):
        code, _, err = cli("scan", untrained_detector, photo, "--out", tmp_path / name, "--detection-threshold", "0.05",
                           "--precision", "32", *region, capsys=capsys)
        assert code == 0, err
    rows = {name: [(float(r["row"]), float(r["col"]), float(r["score"]))
                   for r in csv.DictReader(open(tmp_path / name / "detections.csv"))] for name in ("whole", "part")}
    inner = lambda rows: {(r, c) for r, c, _ in rows if r > 256 + 160 and c > 128 + 160}  # noqa: E731
    assert rows["part"] and all(r >= 256 and c >= 128 for r, c, _ in rows["part"])
    assert inner(rows["part"]) == inner(rows["whole"])  # away from the region's edge, the same peaks


@pytest.mark.parametrize("args, words", [
    (["--stride", "16"], "--stride 16 does not apply"),
    (["--mode", "sliding"], "--mode 'sliding' does not apply"),
])
def test_a_scan_refuses_settings_of_a_patch_classifier(untrained_detector, tmp_path, capsys, args, words):
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1, count=3, size=64)
    code, _, err = cli("scan", untrained_detector, photo, "--out", tmp_path / "s", *args, capsys=capsys)
    assert code == 1 and words in err and len(err.strip().splitlines()) == 1


def test_a_detector_that_names_classes_names_each_detection_by_its_cell(tmp_path, capsys):
    run = untrained_point_detector(tmp_path / "run", threshold=0.2, by_class=True)
    record = RunFolder(run).read_record()
    assert record.names_objects and record.classes == ("blob", "cyan") and record.model.num_classes == 2
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1, second="cyan")
    code, out, err = cli("scan", run, photo, "--dots", photo.with_suffix(".csv"), "--out", tmp_path / "s",
                         "--precision", "32", capsys=capsys)
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "s" / "detections.csv")))
    net, record = load_point_detector(run)
    _, names = point_maps(net, record, load_photo(photo, 3))
    assert rows and names.shape == (2, 64, 64) and np.allclose(names.sum(0), 1.0, atol=1e-4)
    for r in rows:  # each detection is named by the most probable class of its own cell
        i, j = int(float(r["row"]) // CELL), int(float(r["col"]) // CELL)
        assert r["class"] == record.classes[int(names[:, i, j].argmax())]
    report = json.loads((tmp_path / "s" / "dots.json").read_text())
    assert set(report) == {"blob", "cyan"} and "all objects" in out  # per-class rows without a verifier
    assert "never names" not in err
    renamed = tmp_path / "typo.csv"  # "cyan" misspelt: its row finds nothing, and one line says why
    renamed.write_text(photo.with_suffix(".csv").read_text().replace("cyan", "cyann"))
    code, out, err = cli("scan", run, photo, "--dots", renamed, "--out", tmp_path / "s2", "--precision", "32",
                         capsys=capsys)
    warned = [line for line in err.splitlines() if "never names" in line]
    assert code == 0 and len(warned) == 1 and "cyann" in warned[0] and "blob, cyan" in warned[0], err
    assert "cyann" in out and "(not a class of the scan)" in out
    # at half scale in a region: the cell of each detection in the scanned (resized, cut) photo names it
    code, _, err = cli("scan", run, photo, "--out", tmp_path / "half", "--scale", "0.5", "--region", "128:,64:",
                       "--precision", "32", capsys=capsys)
    assert code == 0, err
    _, half = point_maps(net, record, load_photo(photo, 3, 0.5, parse_region("128:,64:")))
    named = list(csv.DictReader(open(tmp_path / "half" / "detections.csv")))
    assert named
    for r in named:  # rows are in the photo's pixels: into the region's, then halved, then to cells
        i, j = int((float(r["row"]) - 128) * 0.5 // CELL), int((float(r["col"]) - 64) * 0.5 // CELL)
        assert r["class"] == record.classes[int(half[:, i, j].argmax())]
    counts = json.loads((tmp_path / "s" / "counts.json").read_text())
    assert set(counts) == {"blob", "cyan"} and sum(counts.values()) == len(rows)  # the classes, not "animal"
    code, _, err = cli("scan", run, photo, "--dots", photo.with_suffix(".csv"), "--out", tmp_path / "s2",
                       "--choose-thresholds", capsys=capsys)  # the centre map's threshold, against every dot
    assert code == 0 and set(RunFolder(run).read_record().scan_thresholds.per_class) == {"animal"}, err
