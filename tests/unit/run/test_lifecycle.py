"""A run folder's life while something trains into it: claimed once (an existing run refused unless overwrite, which
removes every output made of the old weights), locked while written, and marked when training stops early."""

from __future__ import annotations

import signal

import pytest

from cnnkit.errors import Interrupted, RunError
from cnnkit.run import ModelSpec, RunFolder, RunRecord
from cnnkit.run.lifecycle import claimed, continuing, refuse_occupied, remove_outputs, stopping
from cnnkit.run.lock import LOCK_FILE


def _write_run(path, status: str = "finished") -> RunFolder:
    from cnnkit.data.preprocess import Preprocessing

    run = RunFolder(path)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_record(RunRecord(model=ModelSpec("tiny_cnn", 2, 3), classes=("a", "b"),
                               preprocessing=Preprocessing((8, 8), 3, (0.5,) * 3, (0.25,) * 3), status=status))
    return run


def test_an_existing_run_is_refused_unless_overwrite(tmp_path):
    run = _write_run(tmp_path / "run")
    with pytest.raises(RunError, match="already holds a run, finished. Choose another `out`, or replace it"):
        refuse_occupied(run)
    refuse_occupied(run, overwrite=True)
    refuse_occupied(RunFolder(tmp_path / "empty"))
    with pytest.raises(RunError, match="already holds a run"), claimed(run):
        pytest.fail("a claimed folder that holds a run")
    assert run.read_record().status == "finished" and not (run.path / LOCK_FILE).exists()


def test_overwrite_removes_the_old_runs_outputs_and_whatever_was_made_of_its_weights(tmp_path):
    run = _write_run(tmp_path / "run")
    for folder in ("eval-other", "scan-photo", "inspect", "checkpoints", "data"):
        (run.path / folder).mkdir()
    (run.path / "model.safetensors").write_bytes(b"old")
    (run.path / "notes.txt").write_text("mine")
    with claimed(run, overwrite=True):
        assert (run.path / LOCK_FILE).exists()
        left = sorted(p.name for p in run.path.iterdir() if p.name != LOCK_FILE)
    assert left == ["data", "notes.txt"]
    assert remove_outputs(run) == []


def test_a_stop_marks_the_run_and_says_how_to_go_on(tmp_path):
    run = _write_run(tmp_path / "run", status="training")
    with pytest.raises(Interrupted, match="no epoch had ended: start it afresh with `overwrite`"), continuing(run):
        raise Interrupted("Stopped by SIGTERM", signal.SIGTERM)
    record = run.read_record()
    assert record.status == "interrupted" and "no epoch had ended" in record.status_reason
    assert not (run.path / LOCK_FILE).exists()
    run = _write_run(tmp_path / "failing", status="training")
    with pytest.raises(ValueError), stopping(run):
        raise ValueError("bad batch")
    assert run.read_record().status == "failed" and "ValueError: bad batch" in run.read_record().status_reason


def test_nothing_written_is_said_when_a_stop_comes_before_the_record(tmp_path):
    with pytest.raises(Interrupted, match="nothing was written"), claimed(RunFolder(tmp_path / "new")):
        raise KeyboardInterrupt
    assert not (tmp_path / "new").exists()
