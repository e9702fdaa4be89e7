"""A ``cnnkit`` process started before its command is known, so that learning again starts at once.

A fresh interpreter spends 10 to 15 s on a 2-core machine importing torch, torchvision, Lightning and timm before a
training's first step, longer than the training of a solved head on cached features takes. The labelling servers
therefore keep one spare process: it imports what training needs while the person labels, then waits on its
standard input for one line, the command's words (as JSON), and runs that command as ``cnnkit`` would, its output
appended to the given log. It is a process of its own as before (the page keeps answering, a crash there loses no
label, stopping the server stops it); one command per process, so the next spare is started when one is taken and
its training has ended. A spare whose server is gone reads the end of its input and exits.

The process itself is ``python -m cnnkit.cli.warm`` (on the command line's floor, as it runs a command); this module
starts and hands it its command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


class Spare:
    """One spare process, importing from the moment it is made."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "cnnkit.cli.warm"], stdin=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)

    def take(self, words: list[str], log: Path) -> subprocess.Popen | None:
        """The spare running ``cnnkit WORDS`` (its output appended to ``log``), or None when it has ended."""
        if self.process.poll() is not None:
            return None
        try:
            self.process.stdin.write(json.dumps({"args": words, "log": str(Path(log).absolute()),
                                                 "cwd": os.getcwd()}) + "\n")
            self.process.stdin.close()
        except OSError:  # it ended meanwhile
            return None
        return self.process

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
