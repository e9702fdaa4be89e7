"""The network every cnnkit model is: a feature extractor, then a head (pre-logits layers and a classifier)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from cnnkit.errors import ModelError


class ConvNet(nn.Module):
    """``features`` (convolutions) -> ``neck`` (flatten, hidden dense layers) -> ``classifier`` (logits).

    Mirrors timm: ``forward_features``, ``forward_head(x, pre_logits=True)`` for embeddings, ``reset_classifier``.
    """

    def __init__(self, features: nn.Sequential, neck: nn.Sequential, num_features: int, num_classes: int,
                 dropout: float = 0.0):
        super().__init__()
        self.features = features
        self.neck = neck
        self.head_drop = nn.Dropout(dropout)
        self.num_features = num_features
        self.num_classes = num_classes
        self.classifier = nn.Linear(num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.neck(x))
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.num_features, num_classes)


def feature_shape(features: nn.Module, in_channels: int, image_size: tuple[int, int], model: str) -> torch.Size:
    """Shape (C, H, W) that ``features`` gives for one input, computed on the meta device (no memory, no time)."""
    try:
        probe = copy.deepcopy(features).to("meta").eval()
        shape = probe(torch.empty(1, in_channels, *image_size, device="meta")).shape[1:]
    except (RuntimeError, ValueError) as e:
        raise ModelError(
            f"Input {in_channels}x{image_size[0]}x{image_size[1]} does not fit model {model!r}: {e}. "
            "Use a larger --image-size."
        ) from None
    if any(s < 1 for s in shape):
        raise ModelError(f"Input {image_size[0]}x{image_size[1]} is too small for model {model!r}.")
    return shape


def dense_neck(num_inputs: int, hidden: tuple[int, ...], activation: type[nn.Module], dropout: float) -> nn.Sequential:
    """Flatten, then for each hidden width: (dropout), dense, activation."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = num_inputs
    for size in hidden:
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(width, size), activation()]
        width = size
    return nn.Sequential(*layers)
