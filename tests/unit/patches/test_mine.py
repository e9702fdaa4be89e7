"""Hard negatives mined with a point detector (``patches/mine.py``, ``cnnkit patches --hard-negatives``): its
strongest false centres, far from every dot and wholly inside the photo, a patch side apart."""

from __future__ import annotations

import csv

import numpy as np
from PIL import Image

from cnnkit.config import PatchConfig
from cnnkit.patches.mine import false_detections
from cnnkit.scan.detect import detect
from cnnkit.scan.points import centre_map, load_point_detector
from cnnkit.scan.windows import ScanResult, load_photo
from tests.unit.dotted_photos import CELL, blob_photo, cli, untrained_point_detector


def test_mining_with_a_point_detector_adds_its_strongest_false_centres_far_from_every_dot(untrained_detector,
                                                                                           tmp_path, capsys):
    photo = tmp_path / "b.png"
    dots = np.array(blob_photo(photo, seed=2, count=12))
    code, out, err = cli("patches", photo, "--dots", photo.with_suffix(".csv"), "--size", "48", "--radius", "24",
                         "--backgrounds", "6", "--out", tmp_path / "p", "--hard-negatives", untrained_detector,
                         capsys=capsys)
    assert code == 0, err
    assert f"cnnkit points PHOTO... --dots CSV... --patches {tmp_path / 'p'}" in out  # what to train next
    rows = list(csv.DictReader(open(tmp_path / "p" / "manifest.csv")))
    mined = np.array([(int(r["row"]), int(r["col"])) for r in rows if r["kind"] == "hard negative"])
    assert len(mined) == 6 and {r["class"] for r in rows if r["kind"] == "hard negative"} == {"background"}
    assert all(np.hypot(*(dots - m).T).min() >= 24 for m in mined)  # never on an object
    assert all(np.hypot(*(mined[k] - mined[:k]).T).min() >= 48 for k in range(1, 6))  # a patch side apart
    assert mined.min() >= 24 and mined.max() <= 512 - 24  # wholly inside: its strongest peaks lie on the edges
    # the detector's strongest false centres, strongest first: the first is the highest cell far from every dot
    net, record = load_point_detector(untrained_detector)
    heat = centre_map(net, record, load_photo(photo, 3))
    ii, jj = np.mgrid[:heat.shape[0], :heat.shape[1]] * CELL + CELL / 2
    far = np.hypot(ii[..., None] - dots[:, 0], jj[..., None] - dots[:, 1]).min(-1) >= 24
    far &= (np.minimum(ii, jj) >= 24) & (np.maximum(ii, jj) <= 512 - 24)
    scores = [heat[(r - CELL // 2) // CELL, (c - CELL // 2) // CELL] for r, c in mined]
    assert scores[0] == heat[far].max() and scores == sorted(scores, reverse=True), scores


def test_mining_finds_a_weak_false_centre_beside_an_object_and_nothing_on_the_edges(untrained_detector, tmp_path,
                                                                                   monkeypatch):
    heat = np.full((40, 40), 0.01, np.float32)
    heat[20, 20] = 0.9  # an object's centre, on its dot
    heat[20, 24] = 0.4  # a false centre 32 px beside it: a 48 px window's peaks would merge them
    heat[0, :] = heat[:, 0] = 0.95  # the map's edges, where a window would reach past the photo
    monkeypatch.setattr("cnnkit.scan.points.point_maps", lambda *args, **kwargs: (heat, None))  # the detector's map
    photo = tmp_path / "b.png"
    Image.new("RGB", (320, 320)).save(photo)
    dots = [("object", 20 * CELL + 4.0, 20 * CELL + 4.0)]
    plain = detect(ScanResult(heat[None], CELL, (CELL, CELL), 0.0, False, "points"), ["object"], 0.0, 48, ())
    assert not any((d.row, d.col) == (164, 196) for d in plain)  # hidden by the object's higher peak
    found = false_detections(untrained_detector, photo, dots, PatchConfig(size=48, radius=24), count=100)
    assert (found[0].row, found[0].col, found[0].kind) == (164, 196, "hard negative")  # the strongest: 0.4
    assert all(24 <= p.row <= 296 and 24 <= p.col <= 296 for p in found)  # windows wholly inside
    assert all(np.hypot(p.row - 164, p.col - 164) >= 24 for p in found)  # none on the object
    wide = false_detections(untrained_detector, photo, dots, PatchConfig(size=48, radius=100), count=100)
    assert wide and all(np.hypot(p.row - 164, p.col - 164) >= 100 for p in wide)  # a blocked cell is never a peak


def test_mining_with_a_detector_that_names_classes(tmp_path, capsys):
    run = untrained_point_detector(tmp_path / "run", by_class=True)
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=2, count=12, second="cyan")
    code, _, err = cli("patches", photo, "--dots", photo.with_suffix(".csv"), "--size", "48", "--backgrounds", "4",
                       "--out", tmp_path / "p", "--hard-negatives", run, capsys=capsys)
    rows = list(csv.DictReader(open(tmp_path / "p" / "manifest.csv")))
    assert code == 0 and sum(r["kind"] == "hard negative" for r in rows) == 4, err
