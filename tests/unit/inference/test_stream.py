"""Streaming prediction: images decode a batch ahead of the network and no further, memory stays flat in the number
of images, an unreadable image is reported in its row and never stops the others, and progress stays readable in
logs."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli import main
from cnnkit.data.preprocess import Preprocessing
from cnnkit.inference import Predictor, stream
from cnnkit.progress import Progress
from tests.conftest import network_run, write_image_folder


def test_decoding_runs_at_most_two_batches_ahead_of_the_consumer(tmp_path, monkeypatch):
    decoded = []
    monkeypatch.setattr(stream, "_decode", lambda path, prep: decoded.append(path) or (
        np.zeros((4, 4, 3), np.uint8), None))
    paths = [tmp_path / f"{i}.png" for i in range(1000)]
    batches = stream.decoded_batches(paths, Preprocessing((4, 4), 3, (0.5,) * 3, (0.5,) * 3), batch_size=10)
    first = next(batches)
    assert [p.name for p in first.paths] == [f"{i}.png" for i in range(10)] and first.images.shape == (10, 4, 4, 3)
    assert len(decoded) <= 30  # this batch, the next, and the one after it submitted: never the whole list
    assert sum(len(b.paths) for b in batches) == 990 and len(decoded) == 1000


def _peak(work) -> int:
    """The traced peak of Python and numpy allocations while ``work()`` runs, in bytes."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _peak_bytes(predictor: Predictor, folder: Path) -> int:
    def predict_all() -> None:
        for prediction in predictor.iter_predictions([folder], batch_size=16):
            assert prediction.error is None

    return _peak(predict_all)


@pytest.mark.slow
def test_memory_stays_flat_in_the_number_of_images(trained_run, tmp_path):
    """Decoded images dominate what grows: 64x64x3 is 12 KB each, so holding 1,200 would add 15 MB."""
    run = network_run("tiny_cnn", trained_run, tmp_path / "run", size=64)
    predictor = Predictor.load(run, backend="torch")
    rng = np.random.default_rng(0)
    for n, name in ((120, "few"), (1200, "many")):
        (tmp_path / name).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / name / f"{i:05d}.png")
    _peak_bytes(predictor, tmp_path / "few")  # first use: lazy imports and caches
    few, many = _peak_bytes(predictor, tmp_path / "few"), _peak_bytes(predictor, tmp_path / "many")
    assert many < few + 3_000_000, (few, many)  # ten times the images, not ten times the memory


@pytest.fixture
def folder_with_a_corrupt_file(tmp_path) -> Path:
    folder = write_image_folder(tmp_path / "images", ["left"], per_class=40, seed=3) / "left"
    (folder / "left_017.png").write_bytes((folder / "left_017.png").read_bytes()[:60])  # truncated
    return folder


def test_predict_reports_an_unreadable_file_in_its_row_and_predicts_the_rest(trained_run, folder_with_a_corrupt_file,
                                                                             tmp_path, capsys):
    out = tmp_path / "preds.csv"
    code = main(["predict", str(trained_run), str(folder_with_a_corrupt_file), "--out", str(out), "--batch-size", "8"])
    err = capsys.readouterr().err
    assert code == 0 and "left_017.png" in err and "39 of 40 images predicted" in err
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [Path(r["path"]).name for r in rows] == [f"left_{i:03d}.png" for i in range(40)]
    bad = [r for r in rows if r["error"]]
    assert [Path(r["path"]).name for r in bad] == ["left_017.png"] and bad[0]["class"] == ""
    good = [r for r in rows if not r["error"]]
    assert all(r["class"] in ("left", "right", "top") for r in good)
    assert all(abs(sum(float(r[c]) for c in ("left", "right", "top")) - 1) < 1e-4 for r in good)
    expected = Predictor.load(trained_run).predict([Path(r["path"]) for r in good])
    assert [r["class"] for r in good] == [p.label for p in expected]
    assert not list(tmp_path.glob(".preds.csv.partial"))


def test_strict_makes_an_unreadable_file_an_error_status(trained_run, folder_with_a_corrupt_file, tmp_path, capsys):
    out = tmp_path / "preds.jsonl"
    code = main(["predict", str(trained_run), str(folder_with_a_corrupt_file), "--strict", "--out", str(out)])
    assert code == 1 and "1 of 40 images could not be read" in capsys.readouterr().err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 40 and sum(r["error"] is not None for r in rows) == 1  # every row is still written


def test_json_output_is_one_array_written_as_predictions_come(trained_run, folder_with_a_corrupt_file, capsys):
    assert main(["predict", str(trained_run), str(folder_with_a_corrupt_file), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 40 and [r["class"] is None for r in rows].count(True) == 1


def test_progress_writes_a_few_lines_to_a_log_and_redraws_one_on_a_terminal():
    log = io.StringIO()
    with Progress(1000, "predict", stream=log) as bar:
        for _ in range(1000):
            bar.update(1)
    lines = log.getvalue().splitlines()
    assert 2 <= len(lines) <= 5 and lines[-1].startswith("predict: 1000/1000") and "\r" not in log.getvalue()

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    with Progress(50, "predict", stream=screen) as bar:
        for _ in range(50):
            bar.update(1)
    assert screen.getvalue().count("\n") == 1 and screen.getvalue().startswith("\r")
    quiet = io.StringIO()
    with Progress(50, "predict", enabled=False, stream=quiet) as bar:
        bar.update(50)
    assert quiet.getvalue() == ""


def _peak_evaluate(run: Path, data: Path, out: Path) -> int:
    from cnnkit.evaluation.evaluate import evaluate_run

    return _peak(lambda: evaluate_run(run, data=data, out=out, report=False))


@pytest.mark.slow
def test_evaluating_a_folder_keeps_memory_flat_in_its_number_of_images(trained_run, tmp_path):
    run = network_run("tiny_cnn", trained_run, tmp_path / "run", size=64)
    few = write_image_folder(tmp_path / "few", ["left", "right", "top"], 40, size=64, seed=11)
    many = write_image_folder(tmp_path / "many", ["left", "right", "top"], 400, size=64, seed=12)
    _peak_evaluate(run, few, tmp_path / "warm")  # first use: lazy imports, the seen-image digests
    small, large = _peak_evaluate(run, few, tmp_path / "e1"), _peak_evaluate(run, many, tmp_path / "e2")
    assert large < small + 4_000_000, (small, large)  # 1,200 decoded images would add 15 MB


def test_evaluate_skip_bad_leaves_out_a_file_damaged_past_its_header(trained_run, tmp_path):
    from cnnkit.evaluation.evaluate import evaluate_run

    data = write_image_folder(tmp_path / "other", ["left", "right", "top"], 6, seed=21)
    damaged = data / "top" / "top_002.png"
    damaged.write_bytes(damaged.read_bytes()[:70])  # the header reads; the pixels do not
    m = evaluate_run(trained_run, data=data, out=tmp_path / "e", skip_bad=True, report=False).metrics
    assert m["n"] == 17
