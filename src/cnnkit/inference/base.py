"""What every predictor shares, whatever runs the network: the interface (``Predictor``, loaded through
``inference.load``), the decision, and streaming prediction over many files. Imports no torch, so the ONNX Runtime
predictor starts in a fraction of a second."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from cnnkit.data.decode import image_to_array
from cnnkit.data.files import expand_image_paths
from cnnkit.data.prepare import report_unreadable
from cnnkit.data.preprocess import Preprocessing
from cnnkit.errors import ConfigError, DataError
from cnnkit.inference.stream import DecodedBatch, decoded_batches
from cnnkit.progress import Progress


@dataclass(frozen=True)
class Prediction:
    path: str
    label: str  # "" when the image could not be read; a multi-label run's labels read "a|b" ("" for none)
    probability: float  # of ``label``; multi-label: the highest class probability; NaN when unreadable
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


def decide_labels(probabilities: np.ndarray, thresholds: Sequence[float] | None = None) -> np.ndarray:
    """A multi-label decision: (N, classes) booleans, each class present wherever its probability is at least its
    threshold (0.5 without ``thresholds``)."""
    probabilities = np.asarray(probabilities)
    limits = np.full(probabilities.shape[1], 0.5) if thresholds is None else np.asarray(thresholds, np.float64)
    return probabilities >= limits


def check_threshold(threshold: float, num_classes: int) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"Expected a threshold in [0, 1]. Received: {threshold}")
    if num_classes != 2:
        raise ConfigError(f"A decision threshold needs exactly two classes; this model has {num_classes}.")


def check_tta(tta: int) -> None:
    if tta < 1:
        raise ConfigError(f"Expected `tta` >= 1. Received: tta={tta}")


def _to_uint8(array: np.ndarray, what: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{what}: expected uint8 pixels or floats in [0, 1], got {array.dtype}.")
    if np.issubdtype(array.dtype, np.integer):
        if array.min(initial=0) < 0 or array.max(initial=0) > 255:
            raise DataError(f"{what}: integer pixels must lie in 0..255 (found {array.min()}..{array.max()}).")
        return array.astype(np.uint8)
    if not np.isfinite(array).all() or array.min(initial=0) < 0 or array.max(initial=0) > 1:
        raise DataError(f"{what}: float pixels must lie in [0, 1] (found {np.nanmin(array):.3g}.."
                        f"{np.nanmax(array):.3g}); divide by 255 first, or pass uint8.")
    return np.round(array * 255.0).astype(np.uint8)


def _image_arrays(item, index: int) -> list[np.ndarray]:
    """One array input as a list of (H, W, C) uint8 arrays: a numpy array (H, W), (H, W, C), (N, H, W, C) or
    (N, H, W) (a grayscale batch: read so only when the last side is not 1, 3 or 4; (N, H, W, 1) is unambiguous), or
    a torch tensor (H, W), (C, H, W) or (N, C, H, W); floats in [0, 1]."""
    what = f"input {index} ({type(item).__name__})"
    tensor = hasattr(item, "detach")  # a torch tensor (torch is never imported for the check)
    array = np.asarray(item.detach().cpu().numpy() if tensor else item)
    if array.ndim not in (2, 3, 4) or 0 in array.shape:
        raise DataError(f"{what}: expected an image (H, W), (H, W, C) or a batch (N, H, W, C), got shape "
                        f"{array.shape}.")
    if tensor:  # torch's layout, and no guessing: (H, W), (C, H, W) or (N, C, H, W)
        array = array[None] if array.ndim == 2 else array
        if array.shape[-3] not in (1, 3, 4):
            raise DataError(f"{what}: a tensor is (C, H, W) or (N, C, H, W) with 1, 3 or 4 channels; got shape "
                            f"{array.shape} (a batch of grayscale images is (N, 1, H, W)).")
        array = np.moveaxis(array, -3, -1)
    elif array.ndim == 2 or (array.ndim == 3 and array.shape[-1] not in (1, 3, 4)):
        array = array[..., None]  # one grayscale image (H, W), or a batch of them (N, H, W)
    batch = array if array.ndim == 4 else array[None]
    if batch.shape[-1] not in (1, 3, 4):
        raise DataError(f"{what}: expected 1, 3 or 4 channels, got shape {array.shape}.")
    return list(_to_uint8(batch, what))


def as_list(inputs) -> list:
    """Inputs as a list: one path or image becomes a list of one; a list, tuple, 1-D array or pandas Series of paths
    becomes a list of them."""
    if isinstance(inputs, (list, tuple)):
        return list(inputs)
    if getattr(inputs, "ndim", None) == 1 and getattr(getattr(inputs, "dtype", None), "kind", "") in ("U", "O"):
        return list(inputs.tolist())  # numpy strings, or a pandas Series of paths
    return [inputs]


class Predictor:
    """Classes, preprocessing and decision threshold (two classes only; None: argmax) of a trained run, and the
    model behind them. ``Predictor.load(run_dir)`` is all it takes."""

    has_latent_space = False
    backend = "torch"

    def __init__(self, classes: list[str], preprocessing: Preprocessing, run_dir: Path | None = None,
                 threshold: float | None = None, augment: str | None = None, multi_label: bool = False,
                 thresholds: Sequence[float] | None = None):
        self.classes = list(classes)
        self.multi_label = multi_label  # sigmoid probabilities, any number of classes per image
        self.thresholds = None if thresholds is None else list(thresholds)  # multi-label: one per class
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
        return Predictor.loader(run_dir, backend)

    # ``inference.load.load_predictor``, which imports the predictors that subclass this interface; the package
    # (``cnnkit.inference``) sets it when it is imported, before any of its modules can be used
    loader: ClassVar[Callable[[str | Path, str], Predictor]]

    def predict_arrays(self, images: np.ndarray, batch_size: int = 128, tta: int = 1) -> np.ndarray:
        """Class probabilities (N, classes) for decoded (N, H, W, C) uint8 images (multi-label: each in [0, 1] on its
        own, a sigmoid)."""
        raise NotImplementedError

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """The run's decision: class indices (N,), or for a multi-label run (N, classes) booleans."""
        if self.multi_label:
            return decide_labels(probabilities, self.thresholds)
        return decide(probabilities, self.threshold)

    def labelled(self, probabilities: np.ndarray) -> list[tuple[str, float]]:
        """(label, its probability) per row: the decided class, or a multi-label run's classes joined "a|b" with the
        highest class probability."""
        decided = self.decide(probabilities)
        if self.multi_label:
            from cnnkit.data.table import join_labels

            return [(join_labels(c for c, on in zip(self.classes, row) if on), float(p.max(initial=0.0)))
                    for row, p in zip(decided, probabilities)]
        return [(self.classes[k], float(p[k])) for k, p in zip(decided, probabilities)]

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

    def as_images(self, inputs) -> np.ndarray | None:
        """In-memory images (a PIL image, a numpy array or torch tensor, or a list of them; any size and mode) as the
        run's (N, H, W, C) uint8 input, resized as files are; None when ``inputs`` are paths (files, folders)."""
        from PIL import Image

        items = as_list(inputs)
        if all(isinstance(i, (str, os.PathLike)) for i in items):
            return None
        prep = self.preprocessing
        pictures = [item if isinstance(item, Image.Image) else Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
                    for i, item in enumerate(items)
                    for a in ([None] if isinstance(item, Image.Image) else _image_arrays(item, i))]
        return np.stack([image_to_array(p, prep.image_size, prep.channels, prep.interpolation, prep.crop_pct)
                         for p in pictures])

    def stream(self, files: Sequence[str | Path], tta: int = 1, batch_size: int = 32, progress: bool | None = False,
               label: str = "predict", embed: bool = False) -> Iterator[tuple[DecodedBatch, np.ndarray]]:
        """(batch, probabilities of its readable images) for ``files`` in order, decoding the next batch while the
        network runs: memory holds three batches, however many files. ``embed`` gives latent vectors instead."""
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
        for batch, probabilities in self.stream(expand_image_paths(as_list(paths)), tta, batch_size, progress):
            rows = iter(zip(probabilities, self.labelled(probabilities)))
            for path, readable, error in zip(batch.paths, batch.readable, batch.errors):
                if not readable:
                    yield Prediction(str(path), "", math.nan, {}, error)
                    continue
                row, (label, probability) = next(rows)
                yield Prediction(str(path), label, probability, {c: float(v) for c, v in zip(self.classes, row)})

    def embed_files(self, files: Sequence[str | Path], skip_bad: bool = False, progress: bool | None = False,
                    batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """(latent vectors of the readable files, a readable flag per file), streamed: memory holds the vectors, not
        the images. An unreadable file is an error unless ``skip_bad`` (then it is listed in a warning)."""
        parts, readable, errors = [], [], []
        for batch, vectors in self.stream(list(files), batch_size=batch_size, progress=progress, label="features",
                                          embed=True):
            errors += [e for e in batch.errors if e]
            if not skip_bad:
                report_unreadable(errors, skip_bad=False)
            parts.append(vectors)
            readable.append(batch.readable)
        report_unreadable(errors, skip_bad)
        parts = [p for p in parts if len(p)]
        return (np.concatenate(parts) if parts else np.zeros((0, 0), np.float32),
                np.concatenate(readable) if readable else np.zeros(0, bool))

    def predict_proba(self, paths, tta: int = 1) -> np.ndarray:
        """(N, classes) probabilities of every image (files and folders, or in-memory images: see ``as_images``);
        DataError if one cannot be read."""
        images = self.as_images(paths)
        if images is not None:
            return self.predict_arrays(images, tta=tta)
        parts, errors = [], []
        for batch, probabilities in self.stream(expand_image_paths(as_list(paths)), tta):
            errors += [e for e in batch.errors if e]
            parts.append(probabilities)
        report_unreadable(errors, skip_bad=False)
        return np.concatenate(parts) if parts else np.zeros((0, len(self.classes)), np.float32)

    def transform(self, inputs) -> np.ndarray:
        """Latent vectors (N, D) of files, folders or in-memory images (the layer before the classifier)."""
        images = self.as_images(inputs)
        if images is not None:
            return self.embed_arrays(images)
        return self.embed_files(expand_image_paths(as_list(inputs)))[0]

    def predict(self, paths, tta: int = 1, skip_bad: bool = False) -> list[Prediction]:
        """One prediction per image (files and folders, or in-memory images); with ``skip_bad``, unreadable files
        are left out (each listed in a warning) instead of stopping."""
        images = self.as_images(paths)
        if images is not None:
            probabilities = self.predict_arrays(images, tta=tta)
            return [Prediction(f"<input {i}>", label, probability, {c: float(v) for c, v in zip(self.classes, row)})
                    for i, (row, (label, probability)) in enumerate(zip(probabilities, self.labelled(probabilities)))]
        predictions = list(self.iter_predictions(paths, tta))
        report_unreadable([p.error for p in predictions if p.error], skip_bad)
        return [p for p in predictions if not p.error]
