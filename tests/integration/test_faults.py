"""Nothing lost, nothing stuck: trainings killed mid-epoch (in a subprocess, as a user's would be) resume to the
result an uninterrupted run gives; signals end with a message and the right status; one writer per run folder."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests import warm_cli
from tests.conftest import write_image_folder

TIMEOUT = 240  # seconds a subprocess may take on a loaded machine before the test gives up (not a timing check)


def cnnkit(*args, env=None) -> subprocess.CompletedProcess:
    """``cnnkit ARGS`` in a process of its own, forked from a warm interpreter (tests/warm_cli.py)."""
    return warm_cli.run(*args, env=env, timeout=TIMEOUT)


def start(*args, env=None) -> warm_cli.WarmProcess:
    return warm_cli.start(*args, env=env)


def epochs_logged(run: Path) -> int:
    try:
        return len((run / "logs" / "metrics.csv").read_text().splitlines()) - 1
    except FileNotFoundError:
        return 0


def wait_for(condition, process) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"training ended before the fault could be injected: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("training made no progress")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("faults") / "data", ["left", "right", "top"], 40, size=16)


def train_args(data: Path, run: Path, *extra) -> list:
    return ["train", data, "--model", "tiny_cnn", "--batch-size", "4", "--early-stopping", "0", "--lr", "0.01",
            "--out", run, "--no-progress", *extra]


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return wa.keys() == wb.keys() and all((wa[k] - wb[k]).abs().max() < 1e-5 for k in wa)


def history(run: Path) -> list[list[str]]:
    """The logged epochs without their wall time."""
    rows = [line.split(",") for line in (run / "logs" / "metrics.csv").read_text().splitlines()]
    return [row[:-1] for row in rows]


@pytest.mark.slow
@pytest.mark.parametrize("data_in", ["memory", "disk"])  # disk: images read back from the decoded cache in workers
def test_a_training_killed_mid_epoch_resumes_to_the_uninterrupted_result(data, tmp_path, data_in):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert cnnkit(*train_args(data, whole, "--epochs", "8", "--data-in", data_in)).returncode == 0
    process = start(*train_args(data, killed, "--epochs", "8", "--data-in", data_in))
    wait_for(lambda: epochs_logged(killed) >= 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=TIMEOUT)
    record = json.loads((killed / "config.json").read_text())
    assert record["status"] == "training" and (killed / "checkpoints" / "last.ckpt").exists()
    done = epochs_logged(killed)
    assert 3 <= done < 8  # killed mid-training: at most the epoch under way is lost

    predicted = cnnkit("predict", killed, data / "left" / "left_000.png")
    assert predicted.returncode == 0 and "was killed while training" in predicted.stderr  # every reader says so

    resumed = cnnkit("train", "--resume", killed)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((killed / "config.json").read_text())["status"] == "finished"
    assert same_weights(whole, killed)
    assert history(whole) == history(killed)  # the same epochs with the same losses, none lost or repeated


@pytest.mark.slow  # 6 s each, a subprocess training: the quick suite was at its 2-minute limit
@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_training_with_a_message_a_status_and_a_checkpoint(data, tmp_path, signum, status):
    run = tmp_path / "run"
    process = start(*train_args(data, run, "--epochs", "400"))
    wait_for(lambda: epochs_logged(run) >= 2, process)
    process.send_signal(signum)
    _, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == status, err
    assert "stopped by" in err.lower() and "--resume" in err and "Traceback" not in err
    record = json.loads((run / "config.json").read_text())
    assert record["status"] == "interrupted" and "checkpoints/last.ckpt" in record["status_reason"]
    assert (run / "checkpoints" / "last.ckpt").exists() and not (run / ".lock").exists()
    refused = cnnkit(*train_args(data, run, "--epochs", "3"))
    assert refused.returncode == 1 and "--resume" in refused.stderr and "--overwrite" in refused.stderr


@pytest.mark.slow
def test_two_trainings_into_one_folder_one_is_refused(data, tmp_path):
    other = write_image_folder(tmp_path / "other", ["cat", "dog"], 10, seed=3)
    run = tmp_path / "run"
    first = start(*train_args(data, run, "--epochs", "400"))
    wait_for(lambda: epochs_logged(run) >= 1, first)
    for extra in ([], ["--overwrite"]):
        second = cnnkit(*train_args(other, run, "--epochs", "2", *extra))
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert "did not finish" in second.stderr or "being written by process" in second.stderr
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=TIMEOUT)
    record = json.loads((run / "config.json").read_text())
    split = json.loads((run / "split.json").read_text())
    assert record["classes"] == ["left", "right", "top"]  # nothing of the second data set mixed in
    assert {c for samples in split["splits"].values() for _, c in samples} == {"left", "right", "top"}


@pytest.mark.slow
def test_a_failed_resume_keeps_the_history_and_the_run(data, tmp_path):
    run = tmp_path / "run"
    process = start(*train_args(data, run, "--epochs", "400"))
    wait_for(lambda: epochs_logged(run) >= 3, process)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=TIMEOUT)
    log_before = (run / "logs" / "metrics.csv").read_bytes()
    config_before = (run / "config.json").read_bytes()

    fewer = cnnkit("train", "--resume", run, "--epochs", "1")
    assert fewer.returncode == 1 and "already ran" in fewer.stderr
    contradicting = cnnkit("train", "--resume", run, "--lr", "0.5")
    assert contradicting.returncode == 1 and "lr=0.5" in contradicting.stderr
    checkpoint = run / "checkpoints" / "last.ckpt"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    damaged = cnnkit("train", "--resume", run)
    assert damaged.returncode == 1 and "is damaged" in damaged.stderr and "Traceback" not in damaged.stderr
    assert (run / "logs" / "metrics.csv").read_bytes() == log_before
    assert (run / "config.json").read_bytes() == config_before
