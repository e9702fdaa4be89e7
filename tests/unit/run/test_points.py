"""A point detector's run (task "points": ``run/record.py``, ``run/tasks.py``): its record reads back the same, and
every command that needs a classifier refuses it in one line."""

from __future__ import annotations

import pytest

from cnnkit.config import PointsConfig
from cnnkit.run import RunFolder
from tests.unit.dotted_photos import blob_photo, cli


def test_the_record_of_a_point_detector_reads_back_the_same(untrained_detector):
    record = RunFolder(untrained_detector).read_record()
    assert record.finds_points and record.task == "points" and record.classes == ("animal",)
    assert record.points.settings == PointsConfig(detection_threshold=0.3, crop=64, label="animal")
    assert record.points.photos[0].objects == 25 and record.points.cell == 8
    assert RunFolder(untrained_detector).read_record() == record.__class__.from_dict(record.to_dict())


COMMANDS = [["predict", "{run}", "{image}"], ["evaluate", "{run}"], ["export", "{run}"],
            ["features", "{run}", "{data}"], ["similar", "{run}", "{image}"], ["tsne", "{run}"],
            ["anomaly", "{run}", "{image}"], ["inspect", "{run}", "{image}", "--out", "{tmp}/i"], ["summary", "{run}"],
            ["scan", "{other}", "{image}", "--out", "{tmp}/s", "--verify", "{run}"]]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] if c[0] != "scan" else "scan-verify" for c in COMMANDS])
def test_commands_for_classifiers_refuse_a_point_detector_in_one_line(untrained_detector, tmp_path, capsys, command):
    image = tmp_path / "data" / "x" / "a.png"
    image.parent.mkdir(parents=True)
    blob_photo(image, count=3, size=128)
    names = {"run": untrained_detector, "image": image, "data": tmp_path / "data", "tmp": tmp_path,
             "dots": image.with_suffix(".csv"), "other": untrained_detector}
    code, out, err = cli(*[part.format(**names) for part in command], capsys=capsys)
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and "Traceback" not in err, err
    assert "point detector" in lines[0] and out == "", lines[0]
