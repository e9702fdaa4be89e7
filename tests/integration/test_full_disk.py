"""A full disk, end to end: `predict --out` and `train` name the path whose write failed, leave no temporary file,
and a training that fails on a write is marked failed with that cause (not left "training", which later commands
would call killed). With an injected ENOSPC, and on a real small tmpfs where one can be mounted."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import pytest

from cnnkit.cli import main
from cnnkit.run import RunFolder
from tests.unit.full_disk import fill, leftovers, small_disk
from tests.unit.test_io import _FullFile

TRAIN = ["-q", "train", "--model", "tiny_cnn", "--epochs", "2", "--no-progress"]


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("cnnkit: error:")]


def test_predict_out_on_an_injected_full_disk_names_the_file(trained_run, pattern_data, tmp_path, monkeypatch,
                                                             capsys):
    import cnnkit._io as cnnkit_io

    real_open = open

    def full_open(path, mode="r", *args, **kwargs):
        if "w" not in mode:
            return real_open(path, mode, *args, **kwargs)
        Path(path).touch()
        return _FullFile(200)

    monkeypatch.setattr(cnnkit_io, "open", full_open, raising=False)
    assert main(["-q", "predict", str(trained_run), str(pattern_data / "left"), "--out", str(tmp_path / "p.csv")]) == 1
    assert _error_lines(capsys.readouterr().err) == [
        f"cnnkit: error: Cannot write {tmp_path / 'p.csv'}: No space left on device."]
    assert leftovers(tmp_path) == [] and not (tmp_path / "p.csv").exists()


def test_predict_out_on_a_real_full_disk_names_the_file(trained_run, pattern_data, tmp_path, capsys):
    with small_disk(tmp_path / "disk") as disk:
        fill(disk)
        assert main(["-q", "predict", str(trained_run), str(pattern_data), "--out", str(disk / "p.csv")]) == 1
        assert _error_lines(capsys.readouterr().err) == [
            f"cnnkit: error: Cannot write {disk / 'p.csv'}: No space left on device."]
        assert leftovers(disk) == [] and sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_a_checkpoint_that_fails_with_enospc_fails_the_run_naming_the_checkpoint(pattern_data, tmp_path,
                                                                                 monkeypatch, capsys):
    import lightning

    def half_written(trainer, path, *args, **kwargs):
        Path(path).write_bytes(b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lightning.Trainer, "save_checkpoint", half_written)
    run = tmp_path / "run"
    assert main([*TRAIN[:2], str(pattern_data), *TRAIN[2:], "--out", str(run)]) == 1
    assert _error_lines(capsys.readouterr().err) == [
        f"cnnkit: error: Cannot write {run / 'checkpoints' / 'last.ckpt'}: No space left on device."]
    assert leftovers(run) == []
    record = RunFolder(run).read_record()
    assert record.status == "failed" and "last.ckpt: No space left on device" in record.status_reason
    assert "killed" not in RunFolder(run).status_note(record)


@pytest.mark.parametrize("leave", [0, 64 * 1024], ids=["full-from-the-start", "full-during-the-first-epoch"])
def test_training_on_a_real_full_disk_names_what_failed_and_leaves_nothing_half_written(pattern_data, tmp_path,
                                                                                       capsys, leave):
    with small_disk(tmp_path / "disk") as disk:
        fill(disk, leave)
        run = disk / "run"
        assert main([*TRAIN[:2], str(pattern_data), *TRAIN[2:], "--out", str(run)]) == 1
        err = capsys.readouterr().err
        lines = _error_lines(err)
        assert len(lines) == 1 and re.fullmatch(rf"cnnkit: error: Cannot write {re.escape(str(run))}\S*: No space "
                                                r"left on device\.", lines[0]), err
        assert leftovers(disk) == []
        if (run / "config.json").exists():
            reason = json.loads((run / "config.json").read_text()).get("status_reason") or ""
            failed = lines[0].removeprefix("cnnkit: error: ")
            assert failed.rstrip(".") in reason or "could not be marked failed" in err, err
