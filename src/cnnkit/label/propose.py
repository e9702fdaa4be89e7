"""What the dotting page shows: a point detector's detections on a photo as proposed dots (the run's own
threshold, or the one ``scan --choose-thresholds`` stored), and the photo itself as JPEG tiles at a few zoom levels
(level L: the photo shrunk 2^L times), so that a 5000-pixel photo is panned and zoomed without sending it whole."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from cnnkit.data.decode import load_image
from cnnkit.errors import ConfigError
from cnnkit.label.dotting import Proposal
from cnnkit.run import RunFolder
from cnnkit.run.tasks import require

TILE = 512  # pixels of a tile's side at every level
OVERVIEW = 1024  # the coarsest level shows the whole photo in at most this many pixels


def point_run(run: str | Path):
    """The record of ``run``, a point detector's (a classifier's run is labelled with a pool folder instead)."""
    record = RunFolder(run).read_record()
    if not record.finds_points:
        raise ConfigError(f"{run} is not a point detector's run (cnnkit points): dotting photos needs one. To "
                          "label whole images with a classifier, give a pool folder and no --dots.")
    require(record.kind, "scan", run)
    return record


def proposer(run: str | Path):
    """The detector's proposals on one photo: its detections at the run's threshold, at least two cells apart,
    named by the detector where it names classes. The network is loaded at the first photo (the page starts at
    once)."""
    record = point_run(run)
    label = record.points.settings.label
    stored = record.scan_thresholds
    threshold = stored.per_class.get(label, record.points.settings.detection_threshold) if stored else \
        record.points.settings.detection_threshold
    distance = 2.0 * record.points.cell * ((stored.distance_factors or {}).get(label, 1.0) if stored else 1.0)
    lock, loaded = threading.Lock(), []  # one scan at a time: each takes every core

    def propose(photo_path: Path, should_stop=None) -> list[Proposal]:
        from cnnkit.scan.detect import detect
        from cnnkit.scan.points import load_point_detector, name_detections, point_scan
        from cnnkit.scan.windows import load_photo

        with lock:
            if not loaded:
                loaded.append(load_point_detector(run)[0])
            photo = load_photo(photo_path, 3, grayscale_ok=True)
            result = point_scan(loaded[0], record, photo, None, "dense", 2048, "auto", should_stop)
        found = detect(result, [label], threshold, distance, ignore=())
        if record.names_objects:
            found = name_detections(found, result, record.classes)
        return [Proposal(d.row, d.col, d.score, d.label if record.names_objects else None) for d in found]

    return propose


def dot_classes(record, dots_files: list) -> list[str]:
    """The classes a dot can have: a detector's own names where it names classes, else those of the dots it learned
    from and of the dots files open now, in the order first found (the detector's label where there are none)."""
    from cnnkit.data.dots import read_dots
    from cnnkit.errors import DataError

    if record.names_objects:
        return list(record.classes)
    found: list[str] = []
    for taught in record.points.photos:
        try:
            found += [name for name, _, _ in read_dots(taught.dots)]
        except DataError:  # moved or gone since the run learned: its classes are not needed
            continue
    for f in dots_files:
        found += [d.class_name for d in f.dots]
    return list(dict.fromkeys(found)) or [record.points.settings.label]


class Tiles:
    """JPEG tiles of a few photos (the last ``keep`` decoded stay in memory with their shrunk copies)."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self.levels: OrderedDict[Path, list[np.ndarray]] = OrderedDict()
        self.lock = threading.Lock()

    def _levels(self, path: Path) -> list[np.ndarray]:
        with self.lock:
            if path in self.levels:
                self.levels.move_to_end(path)
                return self.levels[path]
        from cnnkit.data.decode import probe_image

        info = probe_image(path)
        levels = [np.asarray(load_image(path, (info.height, info.width), 3))]
        while max(levels[-1].shape[:2]) > OVERVIEW:
            image = Image.fromarray(levels[-1])
            levels.append(np.asarray(image.reduce(2)))
        with self.lock:
            self.levels[path] = levels
            while len(self.levels) > self.keep:
                self.levels.popitem(last=False)
        return levels

    def count(self, path: Path) -> int:
        """How many levels the photo has (the last shows it whole in at most ``OVERVIEW`` pixels)."""
        return len(self._levels(path))

    def tile(self, path: Path, level: int, row: int, col: int) -> bytes:
        levels = self._levels(path)
        if not 0 <= level < len(levels):
            raise ConfigError(f"`level` must be 0 to {len(levels) - 1} for {path.name}; got {level}.")
        pixels = levels[level]
        top, left = row * TILE, col * TILE
        if not (0 <= top < pixels.shape[0] and 0 <= left < pixels.shape[1]):
            raise ConfigError(f"The tile ({row}, {col}) of level {level} lies outside {path.name}.")
        out = io.BytesIO()
        Image.fromarray(pixels[top:top + TILE, left:left + TILE]).save(out, "JPEG", quality=88)
        return out.getvalue()
