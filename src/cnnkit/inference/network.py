"""Predictors that run in PyTorch: a trained network (``NetworkPredictor``) or a classical baseline
(``BaselinePredictor``), behind the interface of ``inference.base.Predictor``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnkit.augment.layer import Augmentation
from cnnkit.baselines.model import BaselineModel
from cnnkit.data.preprocess import Preprocessing, normalize
from cnnkit.errors import ConfigError
from cnnkit.inference.base import Predictor, check_tta
from cnnkit.run import RunFolder, RunRecord
from cnnkit.run.tasks import KINDS, require
from cnnkit.weights import load_weights, read_safetensors


class NetworkPredictor(Predictor):
    """A trained network (see ``cnnkit.models.Network``) in inference mode."""

    has_latent_space = True

    def __init__(self, model: torch.nn.Module, classes: list[str], preprocessing: Preprocessing,
                 run_dir: Path | None = None, threshold: float | None = None, augment: str | None = None,
                 multi_label: bool = False, thresholds: list[float] | None = None):
        super().__init__(classes, preprocessing, run_dir, threshold, augment, multi_label, thresholds)
        self.model = model.eval()

    @classmethod
    def from_record(cls, run: RunFolder, record: RunRecord) -> NetworkPredictor:
        model = load_weights(run.network(record), run.weights_path)
        model = model.to(memory_format=torch.channels_last)  # same results; faster convolutions on the CPU
        threshold = record.decision.threshold if record.decision else None
        return cls(model, list(record.classes), record.preprocessing, run.path, threshold, record.augment,
                   record.multi_label, record.thresholds)

    def _batches(self, images: np.ndarray, batch_size: int):
        device = next(self.model.parameters()).device
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device)
            # NHWC in memory is channels_last: the permuted view needs no copy
            yield start, batch.permute(0, 3, 1, 2).float() / 255.0

    @torch.inference_mode()
    def predict_arrays(self, images: np.ndarray, batch_size: int = 128, tta: int = 1) -> np.ndarray:
        """``tta`` > 1 averages the probabilities of that many versions of each image (see ``augment.tta``), using
        the transforms the run was trained with."""
        check_tta(tta)
        self._refuse_autoencoder()
        augmentation = self._tta_augmentation() if tta > 1 else None
        out = []
        for start, batch in self._batches(images, batch_size):
            if augmentation is None:
                views = [batch]
            else:
                from cnnkit.augment.tta import tta_views

                views = tta_views(batch, tta, augmentation, seed=start)
            activation = torch.sigmoid if self.multi_label else lambda logits: torch.softmax(logits, 1)
            probabilities = [activation(self.model(normalize(v, self.preprocessing))) for v in views]
            out.append(torch.stack(probabilities).mean(0).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.classes)), np.float32)

    @torch.inference_mode()
    def embed_arrays(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """The layer before the classifier: ``forward_head(forward_features(x), pre_logits=True)``."""
        out = [self.model.forward_head(self.model.forward_features(normalize(batch, self.preprocessing)),
                                       pre_logits=True).flatten(1).cpu()
               for _, batch in self._batches(images, batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)

    @property
    def reconstructs(self) -> bool:
        return bool(getattr(self.model, "reconstructs", False))

    def _refuse_autoencoder(self) -> None:
        if self.reconstructs:
            require(KINDS["reconstruct"], "predict", self.run_dir or "This network")

    @torch.inference_mode()
    def reconstruct_arrays(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """An autoencoder's reconstructions (N, H, W, C), float32 in [0, 1], of decoded (N, H, W, C) uint8 images."""
        if not self.reconstructs:
            raise ConfigError(f"{self.run_dir or 'This network'} is a classifier; only an autoencoder reconstructs.")
        out = [self.model(normalize(batch, self.preprocessing)).permute(0, 2, 3, 1).float().cpu()
               for _, batch in self._batches(images, batch_size)]
        h, w = self.preprocessing.image_size
        return torch.cat(out).numpy() if out else np.zeros((0, h, w, self.preprocessing.channels), np.float32)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def _tta_augmentation(self):
        if not self.augment:
            raise ConfigError("Test-time augmentation uses the transforms the run was trained with, and this run "
                              "was trained without `augment`. Retrain with an augment spec (label-preserving "
                              "transforms for your data), or predict without `tta`.")
        return Augmentation(self.augment, self.preprocessing.image_size).to(next(self.model.parameters()).device)


class BaselinePredictor(Predictor):
    """A fitted classical baseline (``cnnkit.baselines.model.BaselineModel``) behind the same interface."""

    backend = "baseline"

    def __init__(self, baseline, classes: list[str], preprocessing: Preprocessing, run_dir: Path | None = None,
                 threshold: float | None = None):
        super().__init__(classes, preprocessing, run_dir, threshold)
        self.baseline = baseline

    @classmethod
    def from_record(cls, run: RunFolder, record: RunRecord) -> BaselinePredictor:

        arrays = read_safetensors(run.weights_path, framework="numpy")
        model = BaselineModel(record.model.method, record.model.params, arrays, len(record.classes))
        threshold = record.decision.threshold if record.decision else None  # `predict` applies it, as for CNNs
        return cls(model, list(record.classes), record.preprocessing, run.path, threshold)

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
