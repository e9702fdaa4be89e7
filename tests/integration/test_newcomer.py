"""The first hour, as a newcomer lives it: `cnnkit train DIR` without a model picks one from the data, a train/ +
val/ folder ends with a test score on val/ that `evaluate` can reproduce, and a second `cnnkit demo` continues one
that was killed."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cnnkit.cli import main
from tests import warm_cli
from tests.conftest import write_image_folder

TIMEOUT = 600


def record_of(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


def test_small_grayscale_images_get_a_scratch_cnn_and_the_screen_points_to_auto(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write_image_folder(tmp_path / "digits", ["a", "b"], 12, size=16, mode="RGBA")  # gray pixels in RGBA files
    assert main(["train", str(data), "--epochs", "1", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "Model: simple_cnn from scratch" in captured.err
    record = record_of(tmp_path / "runs" / "digits-simple_cnn")  # the default folder names the chosen model
    assert record["model"]["name"] == "simple_cnn" and record["training"]["pretrained"] is False
    assert "--auto" in captured.out  # the end-of-training screen says what could do better


@pytest.mark.slow
def test_photos_get_a_pretrained_backbone_with_a_solved_head(tmp_path, capsys):
    data = write_image_folder(tmp_path / "photos", ["a", "b"], 10, size=40, mode="colour")
    assert main(["train", str(data), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "Model: efficientnet_lite0, pretrained on ImageNet" in captured.err
    record = record_of(tmp_path / "run")
    assert record["model"]["name"] == "efficientnet_lite0" and record["training"]["strategy"] == "transfer"
    assert record["result"]["phases"][0]["solver"]  # the head solved, not trained epoch by epoch
    assert "Test" in captured.out and "accuracy" in captured.out


def test_the_model_named_always_wins(tmp_path, capsys):
    data = write_image_folder(tmp_path / "photos", ["a", "b"], 8, size=40, mode="colour")
    assert main(["train", str(data), "--model", "tiny_cnn", "--epochs", "1", "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 0
    assert "Model:" not in capsys.readouterr().err
    assert record_of(tmp_path / "run")["model"]["name"] == "tiny_cnn"


def presplit(root: Path) -> Path:
    """The ImageNet / Ultralytics layout: train/ and val/, no test/."""
    write_image_folder(root / "train", ["left", "right"], 20)
    write_image_folder(root / "val", ["left", "right"], 6, seed=1)
    return root


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_a_train_and_val_folder_ends_with_a_test_score_on_val(tmp_path, capsys):
    data, run = presplit(tmp_path / "data"), tmp_path / "run"
    args = ["train", str(data), "--model", "tiny_cnn", "--epochs", "2", "--out", str(run), "--no-progress"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "val/ (12 images) is the test split" in captured.err
    assert "(n=12)" in captured.out and "No test split" not in captured.out
    split = json.loads((run / "split.json").read_text())["splits"]
    assert sorted(p for p, _ in split["test"]) == sorted(str(p.relative_to(data)) for p in (data / "val").rglob(
        "*.png"))
    assert all(p.startswith("train/") for p, _ in split["val"]) and len(split["val"]) == 6  # carved from train/
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["n"] == 12
    assert "optimistic" not in (run / "report.html").read_text()
    assert main(["evaluate", str(run)]) == 0  # the run's own test split, scored again: the same numbers
    assert json.loads((run / "metrics.json").read_text())["accuracy"] == metrics["accuracy"]


def test_val_can_still_choose_the_weights(tmp_path, capsys):
    data, run = presplit(tmp_path / "data"), tmp_path / "run"
    assert main(["train", str(data), "--model", "tiny_cnn", "--epochs", "1", "--val-folder", "validation",
                 "--out", str(run), "--no-progress"]) == 0
    assert "No test split" in capsys.readouterr().out
    split = json.loads((run / "split.json").read_text())["splits"]
    assert split["test"] == [] and all(p.startswith("val/") for p, _ in split["val"])


def cnnkit(*args, cwd: Path) -> subprocess.CompletedProcess:
    """``cnnkit ARGS`` in a process of its own, forked from a warm interpreter (tests/warm_cli.py)."""
    return warm_cli.run(*args, timeout=TIMEOUT, cwd=cwd)


@pytest.mark.slow
def test_a_second_demo_continues_a_killed_one_and_a_third_points_to_the_result(tmp_path):
    run = tmp_path / "runs" / "demo-wafers"
    process = warm_cli.start("demo", "--epochs", "6", "--early-stopping", "0", "--no-progress", cwd=tmp_path)
    deadline = time.monotonic() + TIMEOUT
    while not (run / "checkpoints" / "last.ckpt").exists():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the demo made no progress"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=TIMEOUT)
    assert record_of(run)["status"] == "training"

    again = cnnkit("demo", "--epochs", "6", "--early-stopping", "0", "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Continuing the interrupted demo in runs/demo-wafers" in again.stderr
    assert record_of(run)["status"] == "finished" and record_of(run)["result"]["epochs_run"] == 6
    assert "Test" in again.stdout

    third = cnnkit("demo", "--no-progress", cwd=tmp_path)
    assert third.returncode == 0 and "cnnkit demo --overwrite" in third.stdout
