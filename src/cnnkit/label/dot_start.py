"""A dotting session opened on photos, their dots files and a point detector's run, and learning again from it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cnnkit.data.decode import probe_image
from cnnkit.errors import ConfigError
from cnnkit.label.dot_learn import DotsLearner, points_flags
from cnnkit.label.dots import DotsFile
from cnnkit.label.dotting import DotSession
from cnnkit.label.propose import dot_classes, point_run, proposer

log = logging.getLogger("cnnkit")


def open_dot_session(run: str | Path, photos: list[str | Path], dots: list[str | Path],
                     propose: bool = True) -> DotSession:
    """The session over ``photos`` with ``run``'s detections as proposals (``propose``), each photo's dots kept in
    its file of ``dots`` (one per photo, in order; continued where it exists)."""
    record = point_run(run)
    if len(dots) != len(photos):
        raise ConfigError(f"`dots`: one CSV per photo, in order (created where missing); got {len(dots)} for "
                          f"{len(photos)} photo(s).")
    paths = [Path(os.path.normpath(Path(p).absolute())) for p in photos]
    files = []
    for photo, path in zip(paths, dots):
        info = probe_image(photo)  # DataError naming the file for one that is not an image
        files.append(DotsFile.open(path, info.height, info.width))
    if len({f.path for f in files}) < len(files) or len(set(paths)) < len(paths):
        raise ConfigError("`dots`: each photo once, each with a dots file of its own.")
    found = sum(len(f.dots) for f in files)
    if found:
        log.info("Continuing %d dots on %d photo(s).", found, sum(bool(f.dots) for f in files))
    return DotSession(paths, files, dot_classes(record, files), proposer(run) if propose else None,
                      near=2.0 * record.points.cell)


def dots_learner(run: str | Path, session: DotSession, flags: list[str] | None = None,
                 warm: bool = False) -> DotsLearner:
    """Learning again like ``run`` (its settings, or ``flags`` for ``cnnkit points``); afterwards the proposals come
    from the new run. ``warm``: in spare processes started ahead (a server's)."""
    run = Path(run)
    settings = point_run(run).points.settings
    return DotsLearner(run, session, points_flags(settings) if flags is None else flags,
                       lambda new_run: session.new_detector(proposer(new_run)), warm=warm)
