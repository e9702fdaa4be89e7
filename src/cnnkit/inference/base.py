"""What every predictor shares, whatever runs the network: loading a run, the decision, and streaming prediction over
many files. Imports no torch, so the ONNX Runtime predictor starts in a fraction of a second."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.config.commands import BACKENDS
from cnnkit.data.files import expand_image_paths
from cnnkit.data.prepare import report_unreadable
from cnnkit.data.preprocess import Preprocessing
from cnnkit.errors import ConfigError, check_choice
from cnnkit.inference.stream import DecodedBatch, decoded_batches
from cnnkit.progress import Progress
from cnnkit.run import RunFolder, RunRecord

log = logging.getLogger("cnnkit")


@dataclass(frozen=True)
class Prediction:
    path: str
    label: str  # "" when the image could not be read
    probability: float  # NaN when the image could not be read
    probabilities: dict[str, float]
    error: str | None = None  # why the image could not be read


def decide(probabilities: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Predicted class indices: the most probable class, or with two classes and a ``threshold``,
    the positive class (index 1) wherever its probability is at least ``threshold``."""
    probabilities = np.asarray(probabilities)
    if threshold is None:
        return probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, np.int64)
    check_threshold(threshold, probabilities.shape[1])
    return (probabilities[:, 1] >= threshold).astype(np.int64)


def check_threshold(threshold: float, num_classes: int) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"Expected a threshold in [0, 1]. Received: {threshold}")
    if num_classes != 2:
        raise ConfigError(f"A decision threshold needs exactly two classes; this model has {num_classes}.")


def check_tta(tta: int) -> None:
    if tta < 1:
        raise ConfigError(f"Expected `tta` >= 1. Received: tta={tta}")


class Predictor:
    """Classes, preprocessing and decision threshold (two classes only; None: argmax) of a trained run, and the
    model behind them. ``Predictor.load(run_dir)`` is all it takes."""

    has_latent_space = False
    backend = "torch"

    def __init__(self, classes: list[str], preprocessing: Preprocessing, run_dir: Path | None = None,
                 threshold: float | None = None, augment: str | None = None):
        self.classes = list(classes)
        self.preprocessing = preprocessing
        self.run_dir = run_dir
        self.augment = augment  # the run's training augmentation spec: what test-time augmentation may use
        if threshold is not None:
            check_threshold(threshold, len(self.classes))
        self.threshold = threshold

    @classmethod
    def load(cls, run_dir: str | Path, backend: str = "auto") -> Predictor:
        """The run's predictor. ``backend`` "torch": its network; "onnx": its export (``cnnkit export``) run by ONNX
        Runtime, without importing torch; "auto": the export when it exists and was made from the current
        weights, else the network."""
        check_choice("backend", backend, BACKENDS)
        run = RunFolder(run_dir)
        record = run.read_record()
        note = run.status_note(record)
        if note:
            log.warning(note)
        if record.model.is_baseline:
            if backend == "onnx":
                raise ConfigError(f"{run.path} is a baseline run: it has no ONNX export. Use `backend` torch.")
            from cnnkit.inference.network import BaselinePredictor

            return BaselinePredictor.from_record(run, record)
        if backend != "torch":
            from cnnkit.inference.onnx import OnnxPredictor, usable_export

            export = usable_export(run, required=backend == "onnx")
            if export is not None:
                return OnnxPredictor.from_record(run, record, export)
        from cnnkit.inference.network import NetworkPredictor

        return NetworkPredictor.from_record(run, record)

    def predict_arrays(self, images: np.ndarray, batch_size: int = 128, tta: int = 1) -> np.ndarray:
        """Class probabilities (N, classes) for decoded (N, H, W, C) uint8 images."""
        raise NotImplementedError

    def embed_arrays(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """Latent vectors (N, D) for decoded (N, H, W, C) uint8 images."""
        raise NotImplementedError

    @property
    def num_parameters(self) -> int:
        raise NotImplementedError

    def load_images(self, paths: Sequence[str | Path]) -> np.ndarray:
        """Decoded (N, H, W, C) uint8 images, all in memory (for a few; ``stream`` for many)."""
        parts, errors = [], []
        for batch in decoded_batches([Path(p) for p in paths], self.preprocessing):
            parts.append(batch.images)
            errors += [e for e in batch.errors if e]
        report_unreadable(errors, skip_bad=False)
        h, w = self.preprocessing.image_size
        return np.concatenate(parts) if parts else np.zeros((0, h, w, self.preprocessing.channels), np.uint8)

    def stream(self, files: Sequence[str | Path], tta: int = 1, batch_size: int = 32, progress: bool = False,
               label: str = "predict", embed: bool = False) -> Iterator[tuple[DecodedBatch, np.ndarray]]:
        """(batch, probabilities of its readable images) for ``files`` in order, decoding the next batch while the
        network runs: memory holds two batches, however many files. ``embed`` gives latent vectors instead."""
        with Progress(len(files), label, enabled=progress and len(files) > batch_size) as bar:
            for batch in decoded_batches(files, self.preprocessing, batch_size):
                if embed:
                    out = self.embed_arrays(batch.images, batch_size)
                else:
                    out = self.predict_arrays(batch.images, batch_size, tta=tta)
                bar.update(len(batch.paths))
                yield batch, out

    def iter_predictions(self, paths: Sequence[str | Path], tta: int = 1, batch_size: int = 32,
                         progress: bool = False) -> Iterator[Prediction]:
        """One prediction per image, as they come; an unreadable image gives a prediction with its ``error``."""
        for batch, probabilities in self.stream(expand_image_paths(paths), tta, batch_size, progress):
            rows = iter(zip(probabilities, decide(probabilities, self.threshold)))
            for path, readable, error in zip(batch.paths, batch.readable, batch.errors):
                if not readable:
                    yield Prediction(str(path), "", math.nan, {}, error)
                    continue
                row, k = next(rows)
                yield Prediction(str(path), self.classes[k], float(row[k]),
                                 {c: float(v) for c, v in zip(self.classes, row)})

    def predict_proba(self, paths: Sequence[str | Path], tta: int = 1) -> np.ndarray:
        """(N, classes) probabilities of every image; DataError if one cannot be read."""
        parts, errors = [], []
        for batch, probabilities in self.stream(expand_image_paths(paths), tta):
            errors += [e for e in batch.errors if e]
            parts.append(probabilities)
        report_unreadable(errors, skip_bad=False)
        return np.concatenate(parts) if parts else np.zeros((0, len(self.classes)), np.float32)

    def predict(self, paths: Sequence[str | Path], tta: int = 1, skip_bad: bool = False) -> list[Prediction]:
        """One prediction per image; with ``skip_bad``, unreadable images are left out (each listed in a
        warning) instead of stopping."""
        predictions = list(self.iter_predictions(paths, tta))
        report_unreadable([p.error for p in predictions if p.error], skip_bad)
        return [p for p in predictions if not p.error]
