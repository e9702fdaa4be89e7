"""A labelling session: the pool's images in the order to show them, the run's guess for each, the labels given
(kept in the labels CSV), images skipped and the session's history for undo. One lock: the page's requests may
come at once."""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cnnkit.data.files import expand_image_paths
from cnnkit.errors import ConfigError, DataError
from cnnkit.label.labels import LabelsFile


@dataclass
class Guess:
    label: str  # "" where the run could not read the image
    probability: float | None


@dataclass
class LabelSession:
    """``images``: the pool's images (absolute paths) in the order to show them; ``classes``: the keys 1-9 give the
    first nine; ``guess``: the run's guess for one image (set again when the run changes)."""

    pool: Path
    images: list[Path]
    classes: list[str]
    labels: LabelsFile
    guess: Callable[[Path], Guess] | None = None
    skipped: list[Path] = field(default_factory=list)
    history: list[tuple[str, Path, str | None]] = field(default_factory=list)  # (action, image, label before)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.known = set(self.images)
        self.guesses: dict[Path, Guess] = {}

    def image(self, path: str) -> Path:
        """The pool image named by ``path`` (relative to the pool); DataError for any other path."""
        image = Path(os.path.normpath(self.pool / path))
        if image not in self.known:
            raise DataError(f"`path` {path!r} is not an image of the pool {self.pool} (paths are relative to it).")
        return image

    def name(self, image: Path) -> str:
        return image.relative_to(self.pool).as_posix()

    def pending(self) -> list[Path]:
        """The images still to label: those never skipped in order, then the skipped ones in the order skipped."""
        skipped = set(self.skipped)
        first = [i for i in self.images if self.labels.get(i) is None and i not in skipped]
        return first + [i for i in self.skipped if self.labels.get(i) is None]

    def label(self, path: str, label: str) -> None:
        if label not in self.classes:
            raise ConfigError(f"`label` {label!r} is not a class of the run; expected one of "
                              f"{', '.join(self.classes)}.")
        with self.lock:
            image = self.image(path)
            self.history.append(("label", image, self.labels.get(image)))
            self.labels.set(image, label)

    def skip(self, path: str) -> None:
        with self.lock:
            image = self.image(path)
            if image in self.skipped:
                self.skipped.remove(image)
            self.skipped.append(image)
            self.history.append(("skip", image, None))

    def undo(self) -> str:
        """Take back the session's last label or skip; the image is shown again first. Returns its path."""
        with self.lock:
            if not self.history:
                raise ConfigError("Nothing to undo: no image was labelled or skipped since the page's server started.")
            action, image, before = self.history.pop()
            if action == "label":
                self.labels.set(image, before)
            if image in self.skipped:
                self.skipped.remove(image)
            self.images.remove(image)  # shown again first: an undone image is the one the person looks at next
            self.images.insert(0, image)
            return self.name(image)

    def state(self) -> dict:
        """What the page shows: the image to label now with the run's guess, and the progress."""
        with self.lock:
            pending = self.pending()
            done = sum(self.labels.get(i) is not None for i in self.images)
            current = pending[0] if pending else None
            guess = None
            if current is not None and self.guess is not None:
                if current not in self.guesses:
                    self.guesses[current] = self.guess(current)
                guess = vars(self.guesses[current])
            return {"classes": self.classes, "labelled": done, "total": len(self.images),
                    "skipped": sum(self.labels.get(i) is None for i in self.skipped),
                    "current": None if current is None else self.name(current), "guess": guess,
                    "can_undo": bool(self.history), "labels_file": str(self.labels.path)}

    def new_guesses(self, guess, order: list[Path] | None = None) -> None:
        """The run changed (learning again): every guess is asked of the new one; ``order``: the images it ranks
        first (the others keep their order after them)."""
        with self.lock:
            self.guess, self.guesses = guess, {}
            if order is not None:
                first = [i for i in order if i in self.known]
                chosen = set(first)
                self.images = first + [i for i in self.images if i not in chosen]


def pool_images(pool: str | Path) -> list[Path]:
    """Every image under the folder ``pool`` (recursively), absolute, in file order."""
    root = Path(pool)
    if not root.is_dir():
        raise DataError(f"Pool {root} is not a folder; give the folder of unlabelled images (sub-folders are searched "
                        "too).")
    images = [Path(os.path.normpath(p.absolute())) for p in expand_image_paths([root])]
    if not images:
        raise DataError(f"Pool {root} holds no images.")
    return images


def suggested_order(suggestions: str | Path, pool: Path, images: list[Path]) -> list[Path]:
    """The images of a ``cnnkit suggest`` list (its ``to_label.csv``, paths relative to the pool), in its order."""
    path = Path(suggestions)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"`suggestions`: cannot read {path} ({e}); give a to_label.csv written by cnnkit suggest.")
    if not rows or "path" not in rows[0]:
        raise DataError(f"`suggestions`: {path} has no path column or no row; give a to_label.csv written by "
                        "cnnkit suggest.")
    known = set(images)
    order = [Path(os.path.normpath(pool / row["path"])) for row in rows]
    missing = [row["path"] for row, image in zip(rows, order) if image not in known]
    if missing:
        raise DataError(f"`suggestions`: {path} lists {missing[0]}, which is not an image of the pool {pool} (was it "
                        "suggested from another pool?).")
    return order
