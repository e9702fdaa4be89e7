"""Load a run folder and predict: needs torch and the model code only, never the training stack.

``Predictor.load(run)`` gives a ``NetworkPredictor`` for a CNN run and a ``BaselinePredictor`` for a baseline run;
both take decoded images and give class probabilities, so predict, evaluate and compare read either kind.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnkit.data.files import expand_image_paths
from cnnkit.data.prepare import decode_images
from cnnkit.data.preprocess import Preprocessing, normalize
from cnnkit.errors import ConfigError
from cnnkit.run import RunFolder, RunRecord

log = logging.getLogger("cnnkit")


@dataclass(frozen=True)
class Prediction:
    path: str
    label: str
    probability: float
    probabilities: dict[str, float]


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


def _check_tta(tta: int) -> None:
    if tta < 1:
        raise ConfigError(f"Expected `tta` >= 1. Received: tta={tta}")


class Predictor:
    """Classes, preprocessing and decision threshold (two classes only; None: argmax) of a trained run, and the
    model behind them. ``Predictor.load(run_dir)`` is all it takes."""

    has_latent_space = False

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
    def load(cls, run_dir: str | Path) -> Predictor:
        run = RunFolder(run_dir)
        record = run.read_record()
        note = run.status_note(record)
        if note:
            log.warning(note)
        kind = BaselinePredictor if record.model.is_baseline else NetworkPredictor
        return kind.from_record(run, record)

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
        return decode_images([Path(p) for p in paths], self.preprocessing)

    def predict_proba(self, paths: Sequence[str | Path], tta: int = 1) -> np.ndarray:
        return self.predict_arrays(self.load_images(expand_image_paths(paths)), tta=tta)

    def predict(self, paths: Sequence[str | Path], tta: int = 1, skip_bad: bool = False) -> list[Prediction]:
        """One prediction per image; with ``skip_bad``, unreadable images are left out (each listed in a
        warning) instead of stopping."""
        files = expand_image_paths(paths)
        if skip_bad:
            images, good = decode_images(files, self.preprocessing, skip_bad=True)
            files = [f for f, ok in zip(files, good) if ok]
        else:
            images = self.load_images(files)
        probabilities = self.predict_arrays(images, tta=tta)
        chosen = decide(probabilities, self.threshold)
        return [
            Prediction(str(f), self.classes[k], float(row[k]), {c: float(v) for c, v in zip(self.classes, row)})
            for f, row, k in zip(files, probabilities, chosen)
        ]


class NetworkPredictor(Predictor):
    """A trained network (see ``cnnkit.models.Network``) in inference mode."""

    has_latent_space = True

    def __init__(self, model: torch.nn.Module, classes: list[str], preprocessing: Preprocessing,
                 run_dir: Path | None = None, threshold: float | None = None, augment: str | None = None):
        super().__init__(classes, preprocessing, run_dir, threshold, augment)
        self.model = model.eval()

    @classmethod
    def from_record(cls, run: RunFolder, record: RunRecord) -> NetworkPredictor:
        from cnnkit.weights import load_weights

        model = load_weights(run.network(record), run.weights_path)
        threshold = record.decision.threshold if record.decision else None
        return cls(model, list(record.classes), record.preprocessing, run.path, threshold, record.augment)

    def _batches(self, images: np.ndarray, batch_size: int):
        device = next(self.model.parameters()).device
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device)
            yield start, batch.permute(0, 3, 1, 2).float() / 255.0

    @torch.no_grad()
    def predict_arrays(self, images: np.ndarray, batch_size: int = 128, tta: int = 1) -> np.ndarray:
        """``tta`` > 1 averages the probabilities of that many versions of each image (see ``augment.tta``), using
        the transforms the run was trained with."""
        _check_tta(tta)
        augmentation = self._tta_augmentation() if tta > 1 else None
        out = []
        for start, batch in self._batches(images, batch_size):
            if augmentation is None:
                views = [batch]
            else:
                from cnnkit.augment.tta import tta_views

                views = tta_views(batch, tta, augmentation, seed=start)
            probabilities = [torch.softmax(self.model(normalize(v, self.preprocessing)), 1) for v in views]
            out.append(torch.stack(probabilities).mean(0).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.classes)), np.float32)

    @torch.no_grad()
    def embed_arrays(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """The layer before the classifier: ``forward_head(forward_features(x), pre_logits=True)``."""
        out = [self.model.forward_head(self.model.forward_features(normalize(batch, self.preprocessing)),
                                       pre_logits=True).flatten(1).cpu()
               for _, batch in self._batches(images, batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def _tta_augmentation(self):
        from cnnkit.augment.layer import Augmentation

        if not self.augment:
            raise ConfigError("Test-time augmentation uses the transforms the run was trained with, and this run "
                              "was trained without `augment`. Retrain with an augment spec (label-preserving "
                              "transforms for your data), or predict without `tta`.")
        return Augmentation(self.augment, self.preprocessing.image_size).to(next(self.model.parameters()).device)


class BaselinePredictor(Predictor):
    """A fitted classical baseline (``cnnkit.baselines.model.BaselineModel``) behind the same interface."""

    def __init__(self, baseline, classes: list[str], preprocessing: Preprocessing, run_dir: Path | None = None):
        super().__init__(classes, preprocessing, run_dir)
        self.baseline = baseline

    @classmethod
    def from_record(cls, run: RunFolder, record: RunRecord) -> BaselinePredictor:
        from cnnkit.baselines.model import BaselineModel
        from cnnkit.weights import read_safetensors

        arrays = read_safetensors(run.weights_path, framework="numpy")
        model = BaselineModel(record.model.method, record.model.params, arrays, len(record.classes))
        return cls(model, list(record.classes), record.preprocessing, run.path)

    def predict_arrays(self, images: np.ndarray, batch_size: int = 1024, tta: int = 1) -> np.ndarray:
        if tta != 1:
            raise ConfigError("Test-time augmentation applies to CNN runs, not to baselines.")
        parts = [self.baseline.predict_proba(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, len(self.classes)), np.float32)

    def embed_arrays(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        raise ConfigError("Baseline runs have no latent space; use a CNN run for features, similar, tsne or knn.")

    @property
    def num_parameters(self) -> int:
        return self.baseline.size
