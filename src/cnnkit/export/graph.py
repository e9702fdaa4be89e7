"""The network as an ONNX graph that takes decoded images as they come: (batch, height, width, channels) uint8 in,
class probabilities and features out; scaling and standardisation happen inside."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cnnkit.data.preprocess import Preprocessing
from cnnkit.errors import ModelError
from cnnkit.onnx_graph import OPSET, export_program, quiet_exporter  # noqa: F401 (OPSET: export.json records it)

INPUT, OUTPUTS = "images", ("probabilities", "features")


class Exportable(nn.Module):
    """uint8 NHWC -> (probabilities, the layer before the classifier), as ``NetworkPredictor`` computes: a softmax,
    or for a ``multi_label`` network a sigmoid per class."""

    def __init__(self, model: nn.Module, preprocessing: Preprocessing, multi_label: bool = False):
        super().__init__()
        self.model = model.eval()
        self.multi_label = multi_label
        self.register_buffer("mean", torch.tensor(preprocessing.mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(preprocessing.std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (images.permute(0, 3, 1, 2).float() / 255.0 - self.mean) / self.std
        feature_map = self.model.forward_features(x)
        logits = self.model.forward_head(feature_map)
        probabilities = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, 1)
        return probabilities, self.model.forward_head(feature_map, pre_logits=True).flatten(1)


def write_onnx(model: nn.Module, preprocessing: Preprocessing, path: Path, multi_label: bool = False) -> None:
    """Export ``model`` with a dynamic batch size (opset ``OPSET``, weights inside the one file)."""
    h, w = preprocessing.image_size
    sample = torch.zeros((2, h, w, preprocessing.channels), dtype=torch.uint8)
    try:
        with quiet_exporter():
            export_program(Exportable(model, preprocessing, multi_label), sample, path, INPUT, list(OUTPUTS))
    except Exception as e:  # the exporter raises many types; name the network and the first line
        raise ModelError(f"Cannot export {type(model).__name__} to ONNX: {str(e).splitlines()[0]}") from None
