"""Learning again without a fresh interpreter's imports: a spare process runs the command it is given (its output
in the log, its exit status its own) and ends when its server is gone; the learner uses it, and uses the new run as
soon as its network is saved, while the training's process still writes the report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from cnnkit.label import LabelsFile
from cnnkit.label.learn import Learner

TIMEOUT = 240  # a bound for a process that never ends, not a timing assertion


def _learner_on(trained_run, tmp_path, used: list) -> tuple[Learner, object]:
    first = tmp_path / "first"
    shutil.copytree(trained_run, first)
    labels = LabelsFile(tmp_path / "labels.csv")
    return Learner(first, labels, ["train"], used.append), first


def _set_status(run, status: str) -> None:
    config = run / "config.json"
    record = json.loads(config.read_text())
    config.write_text(json.dumps({**record, "status": status}))


def test_the_new_run_is_used_once_its_network_is_saved_while_its_process_still_writes_the_report(trained_run,
                                                                                                 tmp_path):
    used = []
    learner, first = _learner_on(trained_run, tmp_path, used)
    new = tmp_path / "first-learn1"
    shutil.copytree(first, new)
    _set_status(new, "training")
    learner.run, learner.outcome = new, "running"
    learner.process = subprocess.Popen(["sleep", "600"])  # the training's process, at work
    try:
        assert learner.status()["state"] == "running" and used == []  # its network is not saved yet
        _set_status(new, "finished")  # what training writes once the network is saved, before the test scoring
        state = learner.status()
        assert state["state"] == "done" and used == [new] and learner.process.poll() is None
        if hasattr(os, "getpriority"):  # the report goes on at a lower priority than the page's ranking
            assert os.getpriority(os.PRIO_PROCESS, learner.process.pid) >= 10
        assert learner.status()["state"] == "done" and used == [new]  # used once
    finally:
        learner.process.kill()
        learner.process.wait()


def test_a_training_that_fails_before_saving_its_network_is_not_used(trained_run, tmp_path):
    used = []
    learner, _ = _learner_on(trained_run, tmp_path, used)
    learner.run, learner.outcome = tmp_path / "first-learn1", "running"  # never written
    learner.process = subprocess.Popen(["false"])
    learner.process.wait()
    assert learner.status()["state"] == "failed" and used == []


@pytest.mark.slow  # two spares' imports, a (refused) training between them
def test_a_warm_learner_trains_in_its_spare_whose_successor_ends_with_the_server(trained_run, tmp_path):
    used = []
    first = tmp_path / "first"
    shutil.copytree(trained_run, first)
    labels = LabelsFile(tmp_path / "labels.csv")
    labels.set(tmp_path / "image.png", "left")
    learner = Learner(first, labels, ["train", "--epochs", "0"], used.append, warm=True)
    try:
        spare = learner.spare.process
        learner.start()
        assert learner.process is spare and learner.spare is None  # the spare runs it; no second one meanwhile
        deadline = time.monotonic() + TIMEOUT
        while learner.status()["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        state = learner.status()
        assert state["state"] == "failed" and used == [] and spare.returncode == 1
        log = (learner.work / "learn.log").read_text()
        assert log.startswith(f"{state['command']}\n")  # the command's output appended to what the learner wrote
        assert "epochs" in state["log"][-1] and "Traceback" not in log
        while learner.spare is None and time.monotonic() < deadline:  # made when the training ends, unpolled
            time.sleep(0.1)
        successor = learner.spare
        assert successor is not None and successor.process.pid != spare.pid
        successor.process.stdin.close()  # what the server's end (even a SIGKILL) does to the spare's input
        assert successor.process.wait(timeout=TIMEOUT) == 0  # it ends without running anything
        assert successor.take(["train", str(tmp_path)], tmp_path / "log") is None  # and an ended spare is not used
    finally:
        learner.stop()
    assert learner.spare is None
