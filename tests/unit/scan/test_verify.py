"""The two-stage scan: a second run classifies a window around each detection, drops its background, relabels the
rest; its windows are centred on the detections and black beyond the photo; runs that cannot verify are refused."""

import csv
import json
import shutil

import numpy as np
import pytest

from cnnkit.cli import main
from cnnkit.data.preprocess import Preprocessing
from cnnkit.data.window import centred_window
from cnnkit.errors import CnnkitError, ConfigError
from cnnkit.inference.base import Predictor
from cnnkit.scan import verify as verify_module
from cnnkit.scan.detect import Detection
from cnnkit.scan.verify import load_verifier, verify

CLASSES = ["background", "pup", "adult"]


class FixedVerifier(Predictor):
    """Calls every window ``answer`` with probability 0.9, and keeps the windows it was shown."""

    def __init__(self, answer: str, side: int = 5, classes=CLASSES, **flags):
        super().__init__(classes, Preprocessing((side, side), 3, (0.5,) * 3, (0.25,) * 3))
        self.answer, self.seen = answer, []
        self.reconstructs = flags.get("reconstructs", False)
        self.multi_label = flags.get("multi_label", False)

    def predict_arrays(self, images, batch_size=128, tta=1):
        self.seen.append(images.copy())
        out = np.full((len(images), len(self.classes)), 0.1 / (len(self.classes) - 1), np.float32)
        out[:, self.classes.index(self.answer)] = 0.9
        return out


def numbered_photo(height: int = 20, width: int = 30) -> np.ndarray:
    """Every pixel says where it is: red = row + 1, green = col + 1 (black is outside)."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows + 1, cols + 1, np.full_like(rows, 7)], axis=-1).astype(np.uint8)


DETECTIONS = [Detection("adult", 10.0, 12.0, 0.6), Detection("pup", 3.0, 25.0, 0.35),
              Detection("adult", 15.0, 4.0, 0.4)]


def test_a_verifier_that_calls_everything_background_removes_every_detection():
    kept, record = verify(DETECTIONS, numbered_photo(), FixedVerifier("background"), batch_size=2)
    assert kept == [] and (record.checked, record.dropped, record.side) == (3, 3, 5)


def test_a_verifier_that_confirms_keeps_every_detection_with_its_class_and_probability():
    verifier = FixedVerifier("pup")
    kept, record = verify(DETECTIONS, numbered_photo(), verifier, batch_size=2)
    assert record.dropped == 0 and len(kept) == 3 and {d.label for d in kept} == {"pup"}
    assert all(abs(d.score - 0.9) < 1e-6 for d in kept)
    assert sorted((d.row, d.col, d.first_label, d.first_score) for d in kept) == sorted(
        (d.row, d.col, d.label, d.score) for d in DETECTIONS)
    assert [len(batch) for batch in verifier.seen] == [2, 1]  # streamed in batches


def test_a_verifier_that_keeps_the_class_only_drops_background_and_keeps_the_first_runs_class_and_score():
    kept, record = verify(DETECTIONS, numbered_photo(), FixedVerifier("pup"), keep_class=True)
    assert record.keeps_class and record.dropped == 0
    assert sorted((d.label, d.row, d.col, d.score) for d in kept) == sorted(
        (d.label, d.row, d.col, d.score) for d in DETECTIONS)
    kept, record = verify(DETECTIONS, numbered_photo(), FixedVerifier("background"), keep_class=True)
    assert kept == [] and record.dropped == 3


def test_windows_are_centred_on_the_detections_and_black_beyond_the_border():
    photo = numbered_photo()
    verifier = FixedVerifier("adult", side=5)
    verify([Detection("adult", 10.0, 12.0, 0.6), Detection("adult", 0.0, 29.0, 0.6)], photo, verifier)
    inside, corner = verifier.seen[0]
    assert (inside[2, 2, 0], inside[2, 2, 1]) == (11, 13)  # the centre pixel is the detection's
    assert np.array_equal(inside, photo[8:13, 10:15])
    assert (corner[2, 2, 0], corner[2, 2, 1]) == (1, 30)
    assert not corner[:2].any() and not corner[:, 3:].any()  # above the photo and right of it: black
    assert np.array_equal(corner[2:, :3], photo[0:3, 27:30])


def test_a_window_larger_than_the_input_is_resized_and_scale_moves_the_centre():
    photo = numbered_photo(40, 60)  # the photo scanned at scale 2: detections are in the half-size original
    verifier = FixedVerifier("adult", side=4)
    _, record = verify([Detection("adult", 10.0, 12.0, 0.6)], photo, verifier, side=4, scale=2.0)
    assert record.side == 4 and verifier.seen[0].shape == (1, 4, 4, 3)  # 8 scanned pixels, resized to 4
    assert abs(int(verifier.seen[0][0, 2, 2, 0]) - 21) <= 2 and abs(int(verifier.seen[0][0, 2, 2, 1]) - 25) <= 2
    assert centred_window(photo, 20, 24, 8)[4, 4, 0] == 21


@pytest.mark.parametrize("kind, classes, message", [
    ("reconstruct", CLASSES, "autoencoder"),
    ("multi-label", CLASSES, "multi-label"),
    ("classify", ["pup", "adult"], "no background class"),
])
def test_runs_that_cannot_verify_are_refused_in_one_line(monkeypatch, kind, classes, message):
    from types import SimpleNamespace

    from cnnkit.run.tasks import KINDS

    fake = FixedVerifier(classes[0], classes=classes)
    monkeypatch.setattr(verify_module.Predictor, "load", classmethod(lambda cls, run, backend="auto": fake))
    monkeypatch.setattr(verify_module, "RunFolder",
                        lambda run: SimpleNamespace(read_record=lambda: SimpleNamespace(kind=KINDS[kind])))
    with pytest.raises(CnnkitError, match=message) as caught:
        load_verifier("somewhere")
    assert "\n" not in str(caught.value)


def test_a_missing_verifying_run_is_refused(tmp_path):
    with pytest.raises(CnnkitError, match="does not exist"):
        load_verifier(tmp_path / "nothing")


def test_scan_verify_records_the_verifier_in_its_outputs(trained_run, tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(
        tmp_path / "photo.png")
    second = tmp_path / "second"
    shutil.copytree(trained_run, second, ignore=shutil.ignore_patterns("export", "checkpoints", "logs", "eval*"))
    record = json.loads((second / "config.json").read_text())
    record["classes"] = ["background", "right", "top"]  # the same network; its first class now drops
    (second / "config.json").write_text(json.dumps(record))
    args = ["scan", str(trained_run), str(tmp_path / "photo.png"), "--out", str(tmp_path / "out"), "--detection-threshold",
            "0.0", "--min-distance", "4"]
    assert main([*args, "--verify", str(trained_run)]) == 1  # no background class: refused before scanning
    assert "no background class" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert main([*args, "--verify", str(second)]) == 0
    assert "Verified by" in capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "scan.json").read_text())
    assert summary["verify"]["run"] == str(second.resolve()) and summary["verify"]["checked"] > 0
    with open(tmp_path / "out" / "detections.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == summary["verify"]["checked"] - summary["verify"]["dropped"]
    assert all(r["verified_by"] == str(second.resolve()) and r["class"] in ("right", "top") for r in rows)
    assert set(summary["counts"]) == {"left", "right", "top"} and summary["verify"]["keeps_class"] is False
    assert main([*args, "--verify", str(second), "--verify-keeps-class"]) == 0
    assert "the first run's classes kept" in capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "scan.json").read_text())
    assert summary["verify"]["keeps_class"] is True and set(summary["counts"]) == {"left", "right", "top"}
    with open(tmp_path / "out" / "detections.csv", newline="") as f:
        assert all(r["class"] == r["first_class"] for r in csv.DictReader(f))
