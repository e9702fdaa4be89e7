"""One writer per run folder: a lock with its owner's pid; a stale lock is taken over; temporary files cleaned;
outputs written with the modes the umask gives."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cnnkit._io import replace_folder, write_text
from cnnkit.errors import OutputError, RunError
from cnnkit.run.lock import LOCK_FILE, locked


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_live_writer_keeps_others_out_and_a_dead_ones_lock_is_taken_over(tmp_path, caplog):
    run = tmp_path / "run"
    run.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / LOCK_FILE).write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(),
                                                 "command": "cnnkit train", "since": 0}))
        with pytest.raises(RunError, match=f"being written by process {sleeper.pid}"), locked(run):
            pass
    finally:
        sleeper.kill()
        sleeper.wait()
    (run / LOCK_FILE).write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname(), "since": 0}))
    with locked(run):
        assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
        with locked(run):  # re-entrant within one process
            pass
        assert (run / LOCK_FILE).exists()
    assert not (run / LOCK_FILE).exists() and "no longer runs" in caplog.text


def test_half_written_files_of_a_killed_writer_are_removed_when_the_next_one_starts(tmp_path):
    run = tmp_path / "run"
    (run / "figures").mkdir(parents=True)
    leftovers = [run / ".model.safetensors.x1.tmp", run / "figures" / ".roc.png.x2.tmp"]
    for path in leftovers:
        path.write_bytes(b"half")
    (run / "keep.txt").write_text("mine")
    with locked(run):
        assert not any(p.exists() for p in leftovers) and (run / "keep.txt").exists()


def test_a_folder_the_lock_created_for_nothing_is_removed(tmp_path):
    with pytest.raises(ValueError), locked(tmp_path / "new"):
        raise ValueError("failed before writing")
    assert not (tmp_path / "new").exists()


def test_files_get_the_mode_the_umask_gives(tmp_path):
    import cnnkit._io as io

    previous = os.umask(0o022)
    io._UMASK = None
    try:
        write_text(tmp_path / "a.txt", "x")
        replace_folder(tmp_path / "set", lambda folder: write_text(folder / "b.txt", "y"))
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
        assert (tmp_path / "set").stat().st_mode & 0o777 == 0o755
        assert (tmp_path / "set" / "b.txt").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(previous)
        io._UMASK = None


def test_a_new_set_of_outputs_replaces_the_old_one_whole(tmp_path):
    write_text(tmp_path / "out" / "stale.png", "from an earlier photo")
    replace_folder(tmp_path / "out", lambda folder: write_text(folder / "new.png", "this one"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["new.png"]
    with pytest.raises(ZeroDivisionError):  # a writer that fails leaves the previous set as it was
        replace_folder(tmp_path / "out", lambda folder: 1 / 0)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["new.png"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_an_output_that_cannot_be_written_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("a file, not a folder")
    with pytest.raises(OutputError, match="file"):
        write_text(tmp_path / "file" / "metrics.json", "{}")
