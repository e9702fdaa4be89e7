"""A labelling session opened on a pool and a run: the order of its images (a suggestion list, the run's own
ranking, or file order), the labels already given (not shown again), the run's guesses."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cnnkit.errors import ConfigError
from cnnkit.inference import Predictor
from cnnkit.label.labels import LabelsFile
from cnnkit.label.session import Guess, LabelSession, pool_images, suggested_order
from cnnkit.run import RunFolder
from cnnkit.run.tasks import require
from cnnkit.suggest import suggest

log = logging.getLogger("cnnkit")


def guesser(run: Path):
    """The run's guess for one image: its decision and that class's probability ("" and None for an unreadable
    image)."""
    predictor = Predictor.load(run)

    def guess(image: Path) -> Guess:
        prediction = predictor.predict([image], skip_bad=True)
        if not prediction or prediction[0].error:
            return Guess("", None)
        return Guess(prediction[0].label, float(prediction[0].probability))

    return guess, list(predictor.classes)


def ranked(run: Path, pool: Path, images: list[Path]) -> list[Path]:
    """The pool ranked as ``cnnkit suggest`` ranks it (hybrid; margin for a run without a latent space), the run's
    own images and copies within the pool left out, unreadable files left out with a warning."""
    try:
        result = suggest(run, pool, n=len(images), query_strategy="hybrid", skip_bad=True)
    except ConfigError:  # a baseline run: no latent space
        result = suggest(run, pool, n=len(images), query_strategy="margin", skip_bad=True)
    return [Path(os.path.normpath(pool / row.path)) for row in result.rows]


def open_session(run: str | Path, pool: str | Path, labels: str | Path, suggestions: str | Path | None = None,
                 order: str = "suggest") -> LabelSession:
    """The session over ``pool`` with ``run``'s guesses, its labels kept in the CSV ``labels`` (read if it exists:
    what it labels is not shown again)."""
    run = Path(run)
    record = RunFolder(run).read_record()
    if record.finds_points:
        raise ConfigError(f"{run} is a point detector's run: to dot photos with its proposals, give the photos and "
                          "--dots, one CSV per photo (cnnkit label PHOTO... --dots CSV... --run RUN).")
    require(record.kind, "suggest", run)
    pool = Path(os.path.normpath(Path(pool).absolute()))
    images = pool_images(pool)
    labels_file = LabelsFile(labels)
    if suggestions is not None:
        images = suggested_order(suggestions, pool, images)
    elif order == "suggest":
        log.info("Ranking %d pool images by what a label would teach %s...", len(images), run)
        images = ranked(run, pool, images)
    guess, classes = guesser(run)
    session = LabelSession(pool, images, classes, labels_file, guess)
    done = sum(labels_file.get(i) is not None for i in images)
    if done:
        log.info("%s already labels %d of the %d images; they are not shown again.", labels_file.path, done,
                 len(images))
    return session


def learned(session: LabelSession, run: Path, rank: bool) -> None:
    """A new run was trained on the labels: its guesses from now on and, with ``rank``, its ranking of the pool."""
    guess, _ = guesser(run)
    session.new_guesses(guess, ranked(run, session.pool, session.images) if rank else None)
