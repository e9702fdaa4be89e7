"""Learning again from the new labels: the run's own split (its train, val and test images, the test split kept as
it was) and every new label as a training image, written as one CSV ``cnnkit train`` reads; the run's recipe trained
on it into a new run folder, in a process of its own (the page stays answering, a crash there loses no label), whose
output is followed as progress. The process is a spare started ahead (:mod:`cnnkit.label.warm`), its imports done
while the person labelled. As soon as the new run's network is saved (its record says "finished"), the page's
guesses come from it; the training's process goes on scoring the test split and writing the report meanwhile."""

from __future__ import annotations

import csv
import io
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cnnkit._io import write_text
from cnnkit.errors import CnnkitError, ConfigError
from cnnkit.label.labels import LabelsFile
from cnnkit.run import RunFolder

LOG_LINES = 5  # lines of the training's output the page shows


def training_csv(run: Path, labels: LabelsFile, out: Path) -> int:
    """Write ``out``: path,label,split for the run's split and, as training images, the labelled images not already
    in it (absolute paths). Returns how many new labels it holds."""
    folder = RunFolder(run)
    manifest = folder.read_split()
    root = folder.existing_data_root(manifest, "learning again needs the images the run was trained on")
    rows, seen = [], set()
    for split, samples in manifest.splits.items():
        for file, label in samples:
            image = (root / file).absolute()
            seen.add(image)
            rows.append((str(image), label, split))
    new = [(str(image), label, "train") for image, label in labels.labels.items() if image not in seen]
    if not new:
        raise ConfigError("Nothing to learn from: no image of the pool is labelled yet.")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("path", "label", "split"))
    writer.writerows(rows + new)
    write_text(out, buffer.getvalue())
    return len(new)


def lower_priority(pid: int, niceness: int = 10) -> None:
    """Raise the niceness of every thread of process ``pid`` (Linux sets it per thread: torch's pool threads too).
    Where that is not possible, nothing changes."""
    try:
        threads = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        threads = [pid]
    for thread in threads:
        try:
            os.setpriority(os.PRIO_PROCESS, thread, max(niceness, os.getpriority(os.PRIO_PROCESS, thread)))
        except (OSError, AttributeError):  # the thread ended meanwhile, or no such call here
            pass


class Learner:
    """Trains ``recipe`` (the command and flags that reproduce the first run: ``["train", "--model", ...]``) on the
    run's data and the labels, one training at a time, into ``FIRST-learn1``, ``FIRST-learn2``, ... beside the first
    run; ``on_trained(run)`` is called once with each run whose network was saved. ``warm`` (the servers'): each
    training runs in a spare process started ahead, the first one when the learner is made."""

    def __init__(self, first_run: Path, labels: LabelsFile, recipe: list[str],
                 on_trained: Callable[[Path], None], warm: bool = False) -> None:
        self.first_run, self.labels, self.recipe, self.on_trained = Path(first_run), labels, recipe, on_trained
        self.work = labels.folder / f"{labels.path.stem}-learn"  # made when learning starts
        self._idle(warm)

    def _idle(self, warm: bool) -> None:
        """No training yet; with ``warm``, the first spare process importing."""
        self.process: subprocess.Popen | None = None
        self.run: Path | None = None
        self.command = ""
        self.started = 0.0
        self.outcome = "idle"  # idle, running, done (the new run in use; its report may still be written) or failed
        self.lock = threading.Lock()
        self.warm, self.spare, self.stopped = warm, None, False
        self._new_spare()

    def _new_spare(self) -> None:
        if self.warm:
            from cnnkit.label.warm import Spare

            self.spare = Spare()

    def next_run(self) -> Path:
        k = 1
        while (self.first_run.parent / f"{self.first_run.name}-learn{k}").exists():
            k += 1
        return self.first_run.parent / f"{self.first_run.name}-learn{k}"

    def planned(self) -> str:
        """The command that learning again runs now (its data.csv written when it starts)."""
        command, flags = self.recipe[0], self.recipe[1:]
        return shlex.join(["cnnkit", command, str(self.work / "data.csv"), "--out", str(self.next_run()), *flags])

    def prepare(self) -> tuple[list[str], str]:
        """The training's data written, ``run`` chosen: the command's words (after ``cnnkit``) and a note on the
        data."""
        data = self.work / "data.csv"
        new = training_csv(self.first_run, self.labels, data)  # makes the folder
        self.run = self.next_run()
        command, flags = self.recipe[0], self.recipe[1:]
        return [command, str(data), "--out", str(self.run), *flags], f"{new} new labels"

    def start(self, foreground: bool = False) -> dict:
        """Begin learning again (``foreground``: the training writes to this process's output, not the log)."""
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                if self.outcome == "running":
                    raise ConfigError(f"Already learning again into {self.run}; wait for it to end.")
                self.process.wait()  # its network is in use; the end of its report is waited for
            words, note = self.prepare()  # makes the work folder
            self.command = shlex.join(["cnnkit", *words])
            with open(self.work / "learn.log", "w", encoding="utf-8") as log:  # the child keeps its own handle
                log.write(f"{self.command}\n{note}\n")
                log.flush()
                if foreground:
                    print(f"{self.command}  ({note})", flush=True)
                taken = None if foreground or self.spare is None else self.spare.take(words, self.work / "learn.log")
                self.spare = None
                self.process = taken or subprocess.Popen([sys.executable, "-m", "cnnkit.cli", *words],
                                                         stdout=None if foreground else log,
                                                         stderr=None if foreground else subprocess.STDOUT,
                                                         stdin=subprocess.DEVNULL)
            self.started, self.outcome = time.monotonic(), "running"
            if self.warm and not foreground:
                threading.Thread(target=self._spare_after, args=(self.process,), daemon=True).start()
        return self.status()

    def status(self) -> dict:
        with self.lock:
            if self.outcome == "running" and (self.process.poll() is None and self._saved()
                                              or self.process.returncode == 0):
                self.outcome = "done"
                self._use_new_run()
            elif self.outcome == "running" and self.process.returncode is not None:
                self.outcome = "failed"
            log = self.work / "learn.log"
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
            return {"state": self.outcome, "run": None if self.run is None else str(self.run),
                    "command": self.command or self.planned(), "log": [line for line in lines if line.strip()][-LOG_LINES:],
                    "seconds": round(time.monotonic() - self.started, 1) if self.started else 0.0}

    def _spare_after(self, process: subprocess.Popen) -> None:
        """Once ``process`` (a training) ends, the next spare imports while the person labels: not sooner, as its
        imports would slow the training down."""
        process.wait()
        with self.lock:
            if self.spare is None and self.process is process and not self.stopped:
                self._new_spare()

    def _saved(self) -> bool:
        """Whether the training has saved its network (the test split's scoring and report may follow)."""
        try:
            return RunFolder(self.run).read_record().status == "finished"
        except (CnnkitError, OSError, ValueError):  # not written yet, or being written
            return False

    def wait(self) -> dict:
        """Wait for the training to end (Ctrl-C stops it, its run folder resumable with ``--resume``)."""
        try:
            self.process.wait()
        finally:
            self.stop()
        return self.status()

    def _use_new_run(self) -> None:
        """``on_trained`` with the new run; a run that cannot be used is a failure, its reason the log's last line.
        A training process still at work (scoring the test split, writing the report) is lowered in priority
        first, so that the page's new guesses and ranking get the cores."""
        if self.process.poll() is None:
            lower_priority(self.process.pid)
        try:
            self.on_trained(self.run)
        except CnnkitError as e:
            self.outcome = "failed"
            with open(self.work / "learn.log", "a", encoding="utf-8") as log:
                log.write(f"cnnkit: error: {e}\n")

    def stop(self) -> None:
        """The server is stopping: a training still at work is stopped (its run folder resumable with --resume), the
        spare too."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
        with self.lock:
            self.stopped = True  # no spare made after this
            if self.spare is not None:
                self.spare.stop()
                self.spare = None
