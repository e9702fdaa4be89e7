"""Learning again from the dots: the point detector's own photos (in its region) and every photo dotted in the
session (in the part marked reviewed, else whole) trained with the detector's own settings into a new run, by
``cnnkit points`` in a process of its own (the page keeps answering; the output is followed as progress). A photo
learned from in part is cut to that part, its dots moved with it, so that nothing undotted is taught as background.
A training stopped before its end (the server stopped, the machine went down) is resumed by the next "learn
again" rather than begun afresh."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

from PIL import Image

from cnnkit.data.decode import load_image, probe_image
from cnnkit.data.dots import read_dots
from cnnkit.errors import CnnkitError, ConfigError, DataError
from cnnkit.label.dots import Dot, DotsFile
from cnnkit.label.dotting import DotSession
from cnnkit.label.learn import Learner
from cnnkit.run import RunFolder


def points_flags(settings) -> list[str]:
    """The ``cnnkit points`` flags of a detector's settings that differ from the defaults (its region left out:
    photos are cut to what they teach)."""
    from cnnkit.config import PointsConfig

    default, words = PointsConfig(), []
    for f in fields(PointsConfig):
        value = getattr(settings, f.name)
        if f.name == "region" or value == getattr(default, f.name):
            continue
        flag = f"--{f.name.replace('_', '-')}"
        if f.name == "patches":
            words += [w for folder in value for w in (flag, folder)]
        elif isinstance(value, bool):
            words += [flag] if value else []
        else:
            words += [flag, str(value)]
    return words


def widened(start: int, end: int, length: int, side: int) -> tuple[int, int]:
    """``start:end`` widened about its middle to at least ``side`` (the training crop), inside ``0:length``."""
    if end - start >= side:
        return start, end
    start = max(0, (start + end - side) // 2)
    end = min(length, start + side)
    return max(0, end - side), end


def cut(photo: Path, dots: list[Dot], box: tuple[int, int, int, int], side: int, folder: Path) -> tuple[Path, Path]:
    """``photo``'s ``box`` (widened to the crop ``side``) and its dots, moved, written into ``folder``."""
    info = probe_image(photo)
    top, bottom = widened(box[0], box[1], info.height, side)
    left, right = widened(box[2], box[3], info.width, side)
    name = f"{photo.stem}-{top}-{left}"
    pixels = load_image(photo, (info.height, info.width), 3)[top:bottom, left:right]
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(folder / f"{name}.png")
    inside = [Dot(d.class_name, d.row - top, d.col - left) for d in dots
              if top <= d.row < bottom and left <= d.col < right]
    DotsFile(folder / f"{name}.csv", bottom - top, right - left, inside).save()
    return folder / f"{name}.png", folder / f"{name}.csv"


def learning_photos(first_run: Path, session: DotSession, folder: Path) -> tuple[list[Path], list[Path], int]:
    """The photos and dots files to learn from (cut where only a part teaches), and how many dots they hold."""
    points = RunFolder(first_run).read_record().points
    region, side = points.settings.region, points.settings.crop
    mine = {p: f for p, f in zip(session.photos, session.files) if f.dots}
    if not mine:
        raise ConfigError("Nothing to learn from: no dot is given on these photos yet.")
    taught = []
    for t in points.photos:
        path = Path(t.photo)
        if path in session.photos:  # the session's dots of it take the place of the run's
            continue
        try:
            info = probe_image(path)
            dots = [Dot(*d) for d in read_dots(t.dots)]
        except DataError as e:
            raise DataError(f"Learning again needs the photos the detector learned from: {e}") from None
        taught.append((path, Path(t.dots), dots, region.bounds(info.height, info.width, path) if region else None))
    entries = taught + [(p, f.path, f.dots, f.reviewed_box()) for p, f in mine.items()]
    photos, dots_files, count = [], [], 0
    for path, dots_path, dots, box in entries:
        if box is not None:
            path, dots_path = cut(path, dots, box, side, folder)
        photos.append(path)
        dots_files.append(dots_path)
        count += len(read_dots(dots_path))
    return photos, dots_files, count


class DotsLearner(Learner):
    """Trains a point detector like ``first_run`` (its settings as ``flags``) on its photos and the session's dots,
    into ``FIRST-learn1``, ``FIRST-learn2``, ... beside it (their cut photos in ``FIRST-learn-data``);
    ``on_trained(run)`` is called with each run whose network was saved; ``warm`` as for :class:`Learner`."""

    def __init__(self, first_run: Path, session: DotSession, flags: list[str],
                 on_trained: Callable[[Path], None], warm: bool = False) -> None:
        self.first_run, self.session, self.recipe, self.on_trained = Path(first_run), session, ["points", *flags], \
            on_trained
        self.work = self.first_run.parent / f"{self.first_run.name}-learn-data"
        self._idle(warm)

    def unfinished(self) -> Path | None:
        """The last run learning again began, if it stopped before its end with a checkpoint to resume from."""
        runs = sorted(self.first_run.parent.glob(f"{self.first_run.name}-learn[0-9]*"),
                      key=lambda p: int(p.name.rsplit("learn", 1)[1]) if p.name.rsplit("learn", 1)[1].isdigit() else 0)
        if not runs or not (runs[-1] / "config.json").exists():
            return None
        folder = RunFolder(runs[-1])
        try:
            status = folder.read_record().status
        except (CnnkitError, OSError, ValueError):  # an unreadable record: begun afresh in a new folder
            return None
        return runs[-1] if status != "finished" and folder.last_checkpoint.exists() else None

    def planned(self) -> str:
        unfinished = self.unfinished()
        if unfinished is not None:
            return shlex.join(["cnnkit", "train", "--resume", str(unfinished)])
        return shlex.join(["cnnkit", "points", "PHOTOS...", "--dots", "CSVS...", "--out", str(self.next_run()),
                           *self.recipe[1:]])

    def prepare(self) -> tuple[list[str], str]:
        unfinished = self.unfinished()
        if unfinished is not None:
            self.run = unfinished
            return ["train", "--resume", str(unfinished)], f"resuming {unfinished.name}, which stopped before its end"
        self.run = self.next_run()
        photos, dots, count = learning_photos(self.first_run, self.session, self.work / self.run.name)
        self.work.mkdir(parents=True, exist_ok=True)
        return ([self.recipe[0], *map(str, photos), "--dots", *map(str, dots), "--out", str(self.run),
                 *self.recipe[1:]], f"{len(photos)} photos, {count} dots")
