"""A run's latent vectors through ONNX Runtime on the CPU: its network up to the layer before the classifier,
exported once per weights and preprocessing into the feature cache's ``graphs/`` and checked against torch there
(``onnx_graph``). Predictions stay torch's; torch computes the vectors too where the graph cannot (no onnxruntime, a
GPU, an export that fails or differs)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from cnnkit.feature_cache import ORT_MIN_IMAGES, graph_folder
from cnnkit.inference import Predictor

log = logging.getLogger("cnnkit")


def embedding_predictor(predictor: Predictor, images: int) -> Predictor:
    """``predictor`` with its latent vectors computed by ONNX Runtime when it is a torch network on the CPU and
    onnxruntime is installed; for fewer than ``ORT_MIN_IMAGES`` images only when the graph already exists (an export
    would cost more than it saves). Else ``predictor`` itself."""
    from cnnkit.inference.network import NetworkPredictor
    from cnnkit.onnx_graph import onnxruntime_installed, usable_graph, weights_digest

    if (not isinstance(predictor, NetworkPredictor) or predictor.reconstructs or not onnxruntime_installed()
            or next(predictor.model.parameters()).device.type != "cpu"):
        return predictor
    key = weights_digest(predictor.model, predictor.preprocessing.to_dict(), "pre_logits")
    if images < ORT_MIN_IMAGES and not usable_graph(graph_folder(), key):
        return predictor
    return OnnxEmbeddings(predictor, key)


class OnnxEmbeddings(Predictor):
    """A torch network's predictor whose ``embed_arrays`` runs in ONNX Runtime; the graph is exported (or read) at
    the first call, checked on its first images."""

    has_latent_space = True

    def __init__(self, network: Predictor, key: str, folder: Path | None = None):
        super().__init__(network.classes, network.preprocessing, network.run_dir, network.threshold,
                         network.augment, network.multi_label, network.thresholds)
        self.network = network
        self.key, self.folder = key, folder or graph_folder()
        self.graph = None
        self.tried = False

    @property
    def model(self):
        return self.network.model

    def predict_arrays(self, images: np.ndarray, batch_size: int = 128, tta: int = 1) -> np.ndarray:
        return self.network.predict_arrays(images, batch_size, tta)

    def embed_arrays(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        if not self.tried and len(images):
            self.tried = True
            self.graph = self._graph(images)
        if self.graph is None:
            return self.network.embed_arrays(images, batch_size)
        parts = [self.graph(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def _graph(self, check_images: np.ndarray):
        from cnnkit.onnx_graph import cached_graph

        model = self.network.model
        was_training = model.training
        try:
            return cached_graph(PreLogits(model.eval()), self.preprocessing, self.key, self.folder, check_images)
        finally:
            model.train(was_training)

    @property
    def num_parameters(self) -> int:
        return self.network.num_parameters


class PreLogits(torch.nn.Module):
    """``forward_head(forward_features(x), pre_logits=True)``, flattened: what ``embed_arrays`` gives, as one module."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True).flatten(1)
