"""Progress of a long loop on stderr: one line redrawn in place on a terminal, a few plain lines otherwise (logs, CI,
pipes), nothing when disabled. Results never go here; they go to stdout or files."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO


class Progress:
    """``Progress(total, "predict", unit="images")``; ``update(n)`` after each batch; ``close()`` at the end.

    ``enabled`` None follows the cnnkit logger: shown at INFO (the command line's default), hidden by ``-q``.
    On a terminal the line is redrawn at most 10 times a second; elsewhere a line is written at 25%, 50%, 75% and at
    the end, so a log of 30,000 images holds five lines, not thousands of bar fragments.
    """

    def __init__(self, total: int, label: str, unit: str = "images", enabled: bool | None = True,
                 stream: TextIO | None = None):
        self.total, self.label, self.unit = total, label, unit
        self.stream = stream or sys.stderr
        if enabled is None:  # as the cnnkit logger says: shown by the command line, hidden by -q
            enabled = logging.getLogger("cnnkit").isEnabledFor(logging.INFO)
        self.enabled = enabled and total > 0
        self.terminal = self.enabled and _is_terminal(self.stream)
        self.done, self.start, self._drawn, self._next_step = 0, time.perf_counter(), 0.0, 1

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.terminal:
            if now - self._drawn >= 0.1 or self.done >= self.total:
                self._drawn = now
                self.stream.write(f"\r{self._line(now)}")
                self.stream.flush()
        elif self.done < self.total and self.done * 4 >= self._next_step * self.total:
            self._next_step = self.done * 4 // self.total + 1
            self._write(self._line(now))

    def close(self) -> None:
        if not self.enabled:
            return
        if self.terminal:
            self.stream.write(f"\r{self._line(time.perf_counter())}\n")
            self.stream.flush()
        else:
            self._write(self._line(time.perf_counter()))
        self.enabled = False

    def _line(self, now: float) -> str:
        seconds = max(now - self.start, 1e-9)
        return (f"{self.label}: {self.done}/{self.total} {self.unit} ({self.done / self.total:.0%}, "
                f"{self.done / seconds:.1f} {self.unit}/s, {seconds:.0f} s)")

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
