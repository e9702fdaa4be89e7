"""Dotted photos and point detector runs, for the tests of every package the point detector (``cnnkit points``)
passes through: training, scanning, mining, the record, serving."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli import main
from cnnkit.config import PointsConfig
from cnnkit.run import RunFolder, RunRecord

CELL = 8  # pixels per cell of a point detector's centre map
COLOURS = {0: (230, 220, 60), 1: (60, 200, 230)}  # yellow, and cyan (its blue high)


def blob_photo(path: Path, seed: int = 0, count: int = 25, size: int = 512, label: str = "blob",
               second: str | None = None) -> list:
    """A noisy grey photo with ``count`` yellow disks (radius 6) at least 20 px apart; their dots file beside it.
    With ``second``, every other disk is cyan, of that class."""
    rng = np.random.default_rng(seed)
    pixels = rng.normal(90, 20, (size, size, 3)).clip(0, 255)
    dots: list[tuple[float, float]] = []
    while len(dots) < count:
        r, c = rng.uniform(12, size - 12, 2)
        if all(np.hypot(r - a, c - b) > 20 for a, b in dots):
            dots.append((float(r), float(c)))
    ii, jj = np.mgrid[0:size, 0:size]
    kinds = [k % 2 if second else 0 for k in range(count)]
    for (r, c), kind in zip(dots, kinds):
        pixels[np.hypot(ii - r, jj - c) < 6] = COLOURS[kind]
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class_name", "row", "col"])
        writer.writerows([(label, second)[kind], f"{r:.2f}", f"{c:.2f}"] for (r, c), kind in zip(dots, kinds))
    return dots


def cli(*args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def train_without_steps(photos: list[Path], out: Path, config: PointsConfig) -> RunRecord:
    """``train_points`` on ``photos`` (their dots beside them) with Lightning's fit taking no step: the run folder,
    record and weights (ImageNet features, a random head) of a detector that has learned nothing yet."""
    import lightning

    from cnnkit.training.points import train_points
    from cnnkit.weights import save_weights

    def no_steps(trainer, module, *args, **kwargs) -> None:
        save_weights(module.net, RunFolder(out).weights_path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lightning.Trainer, "fit", no_steps)
        return train_points(photos, [p.with_suffix(".csv") for p in photos], out, config, progress=False).record


def untrained_point_detector(out: Path, threshold: float = 0.3, by_class: bool = False) -> Path:
    """A point detector's run folder, untrained: for what does not depend on learning (``by_class``: one that names
    the classes blob and cyan)."""
    photo = out.parent / "train.png"
    blob_photo(photo, seed=5, second="cyan" if by_class else None)
    train_without_steps([photo], out, PointsConfig(detection_threshold=threshold, crop=64, label="animal", by_class=by_class))
    return out
