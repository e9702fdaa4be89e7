"""Ctrl-C and SIGTERM during training: stop at once, keep the last epoch's checkpoint, say so, exit 130 or 143."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

from cnnkit.errors import Interrupted

NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}


def _raise(signum: int, frame) -> None:
    raise Interrupted(f"Training was stopped by {NAMES.get(signum, signum)}", signum)


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
