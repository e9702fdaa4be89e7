"""A run folder's life while something trains into it: claimed (a folder that holds a run is refused unless
``overwrite``, which removes the old run's outputs), written by one process holding its lock, and, when training
stops early, marked interrupted or failed with the way on.

Training (``training.fit``, the point detector) and ``--auto`` claim folders through these functions only.
"""

from __future__ import annotations

import errno
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from cnnkit.errors import CnnkitError, Interrupted, OutputError
from cnnkit.run.folder import RunFolder
from cnnkit.run.interrupts import NAMES, received, signals_interrupt
from cnnkit.run.lock import locked

log = logging.getLogger("cnnkit")

RUN_OUTPUTS = ("config.json", "split.json", "pool.json", "model.safetensors", "metrics.json", "report.html",
               "figures", "logs", "checkpoints", "index")
EVALUATION_OUTPUTS = ("metrics.json", "report.html", "figures")
MADE_OF_WEIGHTS = ("eval-*", "scan-*", "inspect")  # evaluations of other folders, scans, inspections
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)  # a write that failed: named as one


def refuse_occupied(run: RunFolder, overwrite: bool = False) -> None:
    """Raise ``run.occupied()`` (RunError) when the folder holds a run and ``overwrite`` is off."""
    if run.exists() and not overwrite:
        raise run.occupied()


def remove_outputs(run: RunFolder, names: tuple[str, ...] = RUN_OUTPUTS) -> list[str]:
    """Remove these outputs of the run, and its evaluations of other folders, scans and inspections
    (``MADE_OF_WEIGHTS``): they describe weights that are about to change. Returns the names removed."""
    removed = []
    for name in (*names, *(p.name for pattern in MADE_OF_WEIGHTS for p in run.path.glob(pattern) if p.is_dir())):
        path = run.path / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed


@contextmanager
def claimed(run: RunFolder, overwrite: bool = False, main: bool = True) -> Iterator[None]:
    """Around a new run's whole training: the folder's lock (main process only), the refusal of a run already there
    checked again under it, the old run's outputs removed when ``overwrite``, and ``stopping``."""
    with locked(run.path) if main else nullcontext():
        if main:
            refuse_occupied(run, overwrite)
        with stopping(run, main):
            if main and overwrite and remove_outputs(run):
                log.info("Replacing the run in %s (overwrite).", run.path)
            yield


@contextmanager
def continuing(run: RunFolder, main: bool = True) -> Iterator[None]:
    """Around a resumed run's training: the folder's lock (main process only) and ``stopping``."""
    with locked(run.path) if main else nullcontext(), stopping(run, main):
        yield


@contextmanager
def stopping(run: RunFolder, main: bool = True) -> Iterator[None]:
    """Around a whole training: Ctrl-C and SIGTERM stop it at once (decoding included); a stop or an error marks
    the run interrupted or failed, with the reason and the way on, and a signal ends in ``Interrupted``."""
    signals_before = len(received)
    try:
        with signals_interrupt():
            yield
    except BaseException as error:
        if len(received) > signals_before and not isinstance(error, Interrupted):
            # the signal's exception was turned into another one by a library it interrupted (Lightning's logging)
            error = Interrupted(f"Stopped by {NAMES.get(received[-1], received[-1])}", received[-1])
        interrupted = isinstance(error, (Interrupted, KeyboardInterrupt))
        failed = error
        if isinstance(error, OSError) and error.errno in WRITE_ERRORS:  # a library's write (Lightning's logs)
            failed = OutputError(f"Cannot write {error.filename or f'into {run.path}'}: {error.strerror or error}.")
        if main and run.config_path.exists():
            _record_stop(run, failed, interrupted)
        if failed is not error:
            raise failed from None
        if not interrupted:
            raise
        kept = ("the last complete epoch is kept in checkpoints/last.ckpt: continue it with "
                f"`cnnkit train --resume {run.path}` (Python: resume())"
                if run.last_checkpoint.exists() else "no epoch had ended: start it afresh with `overwrite`"
                if run.config_path.exists() else "nothing was written")
        signal_number = getattr(error, "signal_number", 2)
        raise Interrupted(f"{str(error) or 'Training was stopped'}. {run.path}: {kept}.", signal_number) from None


def _record_stop(run: RunFolder, error: BaseException, interrupted: bool) -> None:
    """Mark the run interrupted (a signal) or failed (an error), saying why."""
    reason = str(error) if isinstance(error, Interrupted) else f"{type(error).__name__}: {error}"
    where = "the last complete epoch is in checkpoints/last.ckpt" if run.last_checkpoint.exists() else (
        "no epoch had ended")
    try:
        record = run.read_record()
        if record.status == "training":
            run.write_record(record.replace(status="interrupted" if interrupted else "failed",
                                            status_reason=f"{reason[:300]} ({where})"))
    except CnnkitError as e:  # a disk still full: the real cause goes on up, this is said beside it
        log.warning("%s could not be marked %s (%s); it stays marked training.", run.path,
                    "interrupted" if interrupted else "failed", e)
