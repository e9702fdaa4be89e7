"""Writes on a full disk: the error names the path that failed and says why, the temporary file is removed, the
file that was there before is untouched. With an injected ENOSPC, and on a real small tmpfs where one can be
mounted."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import pytest

import cnnkit._io as cnnkit_io
from cnnkit._io import StreamingOutput, atomic_write, write_text
from cnnkit.errors import OutputError
from tests.unit.full_disk import fill, leftovers, small_disk


class _FullFile(io.StringIO):
    """A text file whose flushes fail as on a full disk, after ``room`` characters."""

    def __init__(self, room: int):
        super().__init__()
        self.room = room

    def flush(self):
        if len(self.getvalue()) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")

    def close(self):
        self.flush()
        super().close()


def test_streamed_rows_on_a_full_disk_name_the_file_and_leave_no_partial(tmp_path, monkeypatch):
    real_open = open

    def full_open(path, mode="r", *args, **kwargs):
        if "w" not in mode:
            return real_open(path, mode, *args, **kwargs)
        Path(path).touch()  # the partial file exists, as a real open makes it
        return _FullFile(40)

    monkeypatch.setattr(cnnkit_io, "open", full_open, raising=False)
    with pytest.raises(OutputError, match=rf"Cannot write {tmp_path / 'p.csv'}: No space left on device\."):
        with StreamingOutput(tmp_path / "p.csv", header=["path", "class"]) as out:
            for i in range(10):
                out.write([f"image_{i}.png", "cat"])
    assert not (tmp_path / "p.csv").exists() and leftovers(tmp_path) == []


def test_a_writer_that_fails_in_its_own_words_on_a_full_disk_is_named_as_such(tmp_path, monkeypatch):
    """torch.save says "unexpected pos 704 vs 598" and safetensors "os error 28" when the disk is full."""
    (tmp_path / "model.bin").write_text("the earlier file")

    def torch_like(tmp: Path) -> None:
        tmp.write_bytes(b"\0" * 100)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(cnnkit_io, "_full", lambda folder: True)
    with pytest.raises(OutputError, match=rf"Cannot write {tmp_path / 'model.bin'}: No space left on device\."):
        atomic_write(tmp_path / "model.bin", torch_like)
    assert (tmp_path / "model.bin").read_text() == "the earlier file" and leftovers(tmp_path) == []
    monkeypatch.setattr(cnnkit_io, "_full", lambda folder: False)  # not full: the library's own words
    with pytest.raises(OutputError, match="model.bin: .*unexpected pos 704 vs 598"):
        atomic_write(tmp_path / "model.bin", torch_like)


def test_on_a_real_full_disk_every_writer_names_its_path_and_cleans_up(tmp_path):
    import torch
    from safetensors.torch import save_file

    with small_disk(tmp_path / "disk") as disk:
        write_text(disk / "config.json", "{}")
        fill(disk)
        writers = {"config.json": lambda tmp: tmp.write_text("x" * 10_000),
                   "last.ckpt": lambda tmp: torch.save({"w": torch.zeros(100_000)}, tmp),
                   "model.safetensors": lambda tmp: save_file({"w": torch.zeros(100_000)}, str(tmp))}
        for name, writer in writers.items():
            with pytest.raises(OutputError, match=rf"Cannot write {disk / name}: No space left on device\."):
                atomic_write(disk / name, writer)
        with pytest.raises(OutputError, match=rf"Cannot write {disk / 'p.csv'}: No space left on device\."):
            with StreamingOutput(disk / "p.csv", header=["path", "class"]) as out:
                for i in range(2000):
                    out.write([f"image_{i}.png", "cat"])
        assert (disk / "config.json").read_text() == "{}" and leftovers(disk) == []
        assert sorted(p.name for p in disk.iterdir()) == ["config.json", "filler"]
