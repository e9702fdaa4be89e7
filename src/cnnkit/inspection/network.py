"""A trained network opened for inspection: its first convolution, the output of each of its stages, and a scoring
model around it whose feature map is one module (what Grad-CAM attributes to)."""

from __future__ import annotations

import torch
from torch import nn

from cnnkit.data.preprocess import Preprocessing, normalize
from cnnkit.errors import ModelError


def first_convolution(network: nn.Module) -> tuple[str, nn.Conv2d]:
    """The first ``Conv2d`` the network holds, in definition order (a backbone's stem), and its name."""
    for name, module in network.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ModelError(f"{type(network).__name__} has no convolution: there are no filters to show.")


def _stage_candidates(network: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules whose outputs may end a stage: a timm backbone's own stage list (``feature_info``), else every leaf
    module of the feature extractor."""
    backbone = getattr(network, "backbone", None)
    info = getattr(backbone, "feature_info", None)
    if backbone is not None and info:
        names = [entry["module"] for entry in (info.info if hasattr(info, "info") else info)]
        return [(f"backbone.{n}", backbone.get_submodule(n)) for n in names if n]
    return [(n, m) for n, m in network.named_modules() if n and not list(m.children())]


def stage_outputs(network: nn.Module, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """(name, activation (C, H, W)) at the end of each stage of ``forward_features`` for one standardised image
    ``x`` (1, C, H, W): the last output at each spatial size, in the order they run. A module run twice (mirror
    averaging runs the backbone on the flipped image too) counts by its first call: the image itself."""
    candidates = _stage_candidates(network)
    outputs: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(module, inputs, output):
            if torch.is_tensor(output) and output.ndim == 4 and name not in outputs:
                outputs[name] = output.detach()[0]
        return hook

    hooks = [m.register_forward_hook(keep(n)) for n, m in candidates]
    try:
        with torch.no_grad():
            final = network.forward_features(x)[0]
    finally:
        for h in hooks:
            h.remove()
    # in call order; squeeze-excitation and the like have no spatial map
    ran = [(n, a) for n, a in outputs.items() if a.shape[-2:] != (1, 1)]
    stages = [(n, a) for i, (n, a) in enumerate(ran)
              if i == len(ran) - 1 or ran[i + 1][1].shape[-1] * ran[i + 1][1].shape[-2] < a.shape[-1] * a.shape[-2]]
    if not stages or stages[-1][1].shape != final.shape or not torch.equal(stages[-1][1], final):
        stages.append(("feature map", final.detach()))
    return stages


def strongest_channels(activation: torch.Tensor, count: int) -> tuple[list[int], list[float]]:
    """The ``count`` channels of an activation (C, H, W) with the highest mean, strongest first, and their means."""
    means = activation.float().mean(dim=(1, 2))
    top = torch.argsort(means, descending=True)[:count]
    return top.tolist(), means[top].tolist()


class _FeatureMap(nn.Module):
    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.forward_features(x)


class ScoreModel(nn.Module):
    """Images in [0, 1] (N, C, H, W) to class scores: ``logits``, or ``probabilities`` (softmax; sigmoid for a
    multi-label run). ``feature_map`` is the module that gives the network's last feature map."""

    def __init__(self, network: nn.Module, preprocessing: Preprocessing, output: str = "logits",
                 multi_label: bool = False):
        super().__init__()
        self.feature_map = _FeatureMap(network)
        self.network, self.preprocessing = network, preprocessing
        self.output, self.multi_label = output, multi_label

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.network.forward_head(self.feature_map(normalize(x, self.preprocessing)))
        if self.output == "logits":
            return logits
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, 1)
