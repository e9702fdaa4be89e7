"""Ctrl-C and SIGTERM: stop at once with ``Interrupted`` (the command then says so and exits 130 or 143); during
training, the last epoch's checkpoint is kept."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

from cnnkit.errors import Interrupted

NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}
received: list[int] = []  # every signal turned into Interrupted, even one whose exception was swallowed


def _raise(signum: int, frame) -> None:
    received.append(signum)
    raise Interrupted(f"Stopped by {NAMES.get(signum, signum)}", signum)


@contextmanager
def signals_interrupt():
    """Within the block, SIGINT and SIGTERM raise ``Interrupted`` (Lightning then tears down and re-raises it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in NAMES}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
