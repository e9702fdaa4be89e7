"""The two-stage scan: a second run classifies a window around each of the first run's detections. Its background
drops the detection; any other class replaces the first run's class, and its probability the score (unless
``keep_class``: then it only decides animal or background, and kept detections keep the first run's class and score).

The first run answers "is there an animal here" at every window of the photo; the second sees only those few
places, so it can afford a larger network and a larger context (for sea lions, whose categories differ mostly in
size, the surroundings of the animal)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from cnnkit.data.window import centred_window
from cnnkit.errors import ConfigError
from cnnkit.run import RunFolder
from cnnkit.run.tasks import require
from cnnkit.inference import Predictor
from cnnkit.scan.detect import Detection


@dataclass(frozen=True)
class Verification:
    run: str  # the verifying run, resolved
    side: int  # side of the window around each detection, in the original photo's pixels
    checked: int  # detections classified
    dropped: int  # of them, called background
    keeps_class: bool = False  # kept detections keep the first run's class and score (the verifier only drops)


def background_classes(classes: list[str]) -> tuple[str, ...]:
    return tuple(name for name in classes if name.lower().startswith("background"))


def load_verifier(run_dir: str | Path) -> Predictor:
    """The verifying run's predictor; refused unless it is a single-label classifier with a background* class."""
    require(RunFolder(run_dir).read_record().kind, "verify", run_dir)
    predictor = Predictor.load(run_dir, backend="auto")
    if not background_classes(predictor.classes):
        raise ConfigError(f"`verify` {run_dir} has no background class (its classes: "
                          f"{', '.join(predictor.classes)}); it could never drop a detection. Train it on patches "
                          "with a background* folder (`cnnkit patches` writes one).")
    return predictor


def window_batches(photo: np.ndarray, detections: list[Detection], side: int, scale: float,
                   size: tuple[int, int], batch_size: int) -> Iterator[tuple[list[Detection], np.ndarray]]:
    """Batches of (detections, their windows as (N, H, W, C) uint8 at ``size``): ``photo`` is the scanned photo
    (resized by ``scale``), ``side`` and the detections are in the original photo's pixels."""
    scaled = max(1, round(side * scale))
    for start in range(0, len(detections), batch_size):
        chunk = detections[start:start + batch_size]
        windows = []
        for d in chunk:
            window = centred_window(photo, round(d.row * scale), round(d.col * scale), scaled)
            if (scaled, scaled) != tuple(size):
                image = Image.fromarray(window[..., 0] if window.shape[2] == 1 else window)
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                window = np.asarray(image).reshape(size[0], size[1], window.shape[2])
            windows.append(window)
        yield chunk, np.stack(windows)


def verify(detections: list[Detection], photo: np.ndarray, predictor: Predictor, side: int | None = None,
           scale: float = 1.0, batch_size: int = 64,
           keep_class: bool = False) -> tuple[list[Detection], Verification]:
    """The detections the verifying ``predictor`` does not call background, with its class and probability (the
    first run's kept in ``first_label`` and ``first_score``; with ``keep_class`` the first run's class and score
    stay). ``side``: the window in the original photo's pixels (default the predictor's input size at ``scale``)."""
    size = tuple(predictor.preprocessing.image_size)
    side = side or max(1, round(min(size) / scale))
    background = background_classes(predictor.classes)
    kept = []
    for chunk, windows in window_batches(photo, detections, side, scale, size, batch_size):
        probabilities = predictor.predict_arrays(windows, batch_size=batch_size)
        for d, (label, probability) in zip(chunk, predictor.labelled(probabilities)):
            if label not in background:
                label, probability = (d.label, d.score) if keep_class else (label, probability)
                kept.append(replace(d, label=label, score=probability, first_label=d.label, first_score=d.score))
    run = str(Path(predictor.run_dir).resolve()) if predictor.run_dir else ""
    kept = sorted(kept, key=lambda d: (d.label, -d.score))
    return kept, Verification(run, side, len(detections), len(detections) - len(kept), keep_class)
