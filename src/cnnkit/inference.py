"""Load a run folder and predict: needs torch and the model code only, never the training stack."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnkit.data.files import is_image_file
from cnnkit.data.prepare import decode_images
from cnnkit.data.preprocess import Preprocessing, normalize
from cnnkit.errors import ConfigError, DataError, RunError
from cnnkit.run import RunFolder


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


def build_model_from_config(config: dict) -> torch.nn.Module:
    """The network a run's config describes, with fresh weights."""
    from cnnkit.models import create_model

    spec = config["model"]
    size = tuple(config["preprocessing"]["image_size"])
    try:
        return create_model(spec["name"], len(config["classes"]), int(config["preprocessing"]["channels"]), size,
                            **spec.get("options", {}))
    except (KeyError, TypeError) as e:
        raise RunError(f"The model entry of the run's config is broken: {e!r}.") from None


def expand_image_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given; folders replaced by the images inside them (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and is_image_file(f))
            if not found:
                raise DataError(f"Folder {p} holds no images.")
            out += found
        elif not p.exists():
            raise DataError(f"Image {p} does not exist.")
        else:
            out.append(p)
    return out


class Predictor:
    """A trained network with its classes, preprocessing and decision threshold (two classes only; None: argmax).

    ``Predictor.load(run_dir)`` is all it takes.
    """

    def __init__(self, model: torch.nn.Module, classes: list[str], preprocessing: Preprocessing,
                 run_dir: Path | None = None, threshold: float | None = None, augment: str | None = None):
        self.model = model.eval()
        self.augment = augment  # the run's training augmentation spec: what test-time augmentation may use
        self.classes = list(classes)
        self.preprocessing = preprocessing
        self.run_dir = run_dir
        if threshold is not None:
            check_threshold(threshold, len(self.classes))
        self.threshold = threshold

    @classmethod
    def load(cls, run_dir: str | Path) -> Predictor:
        from cnnkit.weights import load_weights

        run = RunFolder(run_dir)
        config = run.read_config()
        if config["model"].get("kind") == "baseline":
            from cnnkit.baselines.model import BaselinePredictor

            return BaselinePredictor.from_run(run.path, config)
        model = load_weights(build_model_from_config(config), run.weights_path)
        threshold = config.get("decision", {}).get("threshold")
        return cls(model, config["classes"], Preprocessing.from_dict(config["preprocessing"]), run.path, threshold,
                   config.get("training", {}).get("augment"))

    @torch.no_grad()
    def predict_arrays(self, images: np.ndarray, batch_size: int = 128, tta: int = 1) -> np.ndarray:
        """Class probabilities (N, classes) for decoded (N, H, W, C) uint8 images.

        ``tta`` > 1 averages the probabilities of that many versions of each image (see ``augment.tta``), using the
        transforms the run was trained with.
        """
        if tta < 1:
            raise ConfigError(f"Expected --tta N with N >= 1. Received: {tta}")
        device = next(self.model.parameters()).device
        augmentation = self._tta_augmentation() if tta > 1 else None
        out = []
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device)
            batch = batch.permute(0, 3, 1, 2).float() / 255.0
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
        """Latent vectors (N, D): the layer before the classifier (``forward_head(pre_logits=True)``)."""
        device = next(self.model.parameters()).device
        out = []
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device)
            x = normalize(batch.permute(0, 3, 1, 2).float() / 255.0, self.preprocessing)
            out.append(self.model.forward_head(self.model.forward_features(x), pre_logits=True).flatten(1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def _tta_augmentation(self):
        from cnnkit.augment.layer import Augmentation

        if not self.augment:
            raise ConfigError("Test-time augmentation uses the transforms the run was trained with, and this run "
                              "was trained without --augment. Retrain with --augment SPEC (label-preserving "
                              "transforms for your data), or predict without --tta.")
        return Augmentation(self.augment, self.preprocessing.image_size).to(next(self.model.parameters()).device)

    def load_images(self, paths: Sequence[str | Path]) -> np.ndarray:
        return decode_images([Path(p) for p in paths], self.preprocessing)

    def predict_proba(self, paths: Sequence[str | Path], tta: int = 1) -> np.ndarray:
        return self.predict_arrays(self.load_images(expand_image_paths(paths)), tta=tta)

    def predict(self, paths: Sequence[str | Path], tta: int = 1) -> list[Prediction]:
        files = expand_image_paths(paths)
        probabilities = self.predict_arrays(self.load_images(files), tta=tta)
        chosen = decide(probabilities, self.threshold)
        return [
            Prediction(str(f), self.classes[k], float(row[k]), {c: float(v) for c, v in zip(self.classes, row)})
            for f, row, k in zip(files, probabilities, chosen)
        ]
