"""The network every cnnkit model is: a feature extractor, then a head (pre-logits layers and a classifier)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from cnnkit.errors import ModelError


class Network(nn.Module):
    """The contract of every cnnkit network, scratch CNN or pretrained backbone alike (as timm's):

    - ``forward_features(x)``: the feature map (N, ``num_features``, H', W');
    - ``pool(map)``: the vector (N, P) the head starts from (a flatten, or a backbone's global pooling);
    - ``head(vector, pre_logits=False)``: hidden layers, then the classifier (``pre_logits``: stop before it);
    - ``forward_head(map, pre_logits=False) = head(pool(map), pre_logits)``;
    - ``forward(x) = forward_head(forward_features(x))``;
    - ``reset_classifier(n)``, ``num_classes``, ``head_hidden_size`` (the width of the pre-logits vectors);
    - ``set_trainable_stages(n)`` and ``frozen``: which part trains (a backbone's stages; cnnkit's own networks
      always train whole).

    An autoencoder (``reconstructs``: see ``models.autoencoder``) keeps the feature half (its code map, code vector,
    ``head(vector, pre_logits=True)``) and gives the image back instead of logits: ``forward(x)`` is the
    reconstruction, and it has no classifier.
    """

    num_classes: int
    num_features: int
    head_hidden_size: int
    trainable_stages: int = -1
    has_backbone: bool = False
    reconstructs: bool = False  # an autoencoder: forward(x) gives the image back

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(self.pool(x), pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @property
    def frozen(self) -> bool:
        """Whether the feature extractor is frozen as a whole (its pooled features can then be cached)."""
        return self.trainable_stages == 0

    def set_trainable_stages(self, n: int) -> None:
        if n != -1:
            raise ModelError(f"{type(self).__name__} trains whole; freezing stages applies to pretrained backbones.")


class ConvNet(Network):
    """``features`` (convolutions) -> ``neck`` (flatten, hidden dense layers) -> ``classifier`` (logits)."""

    def __init__(self, features: nn.Sequential, neck: nn.Sequential, head_hidden_size: int, num_classes: int,
                 dropout: float = 0.0, num_features: int | None = None):
        super().__init__()
        self.features = features
        self.neck = neck
        self.head_drop = nn.Dropout(dropout)
        self.head_hidden_size = head_hidden_size
        self.num_features = num_features or _out_channels(features)
        self.num_classes = num_classes
        self.classifier = nn.Linear(head_hidden_size, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 1)

    def head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.neck(x))
        return x if pre_logits else self.classifier(x)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.head_hidden_size, num_classes)


def _out_channels(features: nn.Module) -> int:
    """Channels of the feature map: those of the last layer that sets them."""
    channels = [m.out_channels for m in features.modules() if isinstance(m, nn.Conv2d)]
    if not channels:
        raise ModelError("A ConvNet needs at least one convolution in its feature extractor.")
    return channels[-1]


def feature_shape(features: nn.Module, in_channels: int, image_size: tuple[int, int], model: str) -> torch.Size:
    """Shape (C, H, W) that ``features`` gives for one input, computed on the meta device (no memory, no time)."""
    try:
        probe = copy.deepcopy(features).to("meta").eval()
        shape = probe(torch.empty(1, in_channels, *image_size, device="meta")).shape[1:]
    except (RuntimeError, ValueError) as e:
        raise ModelError(
            f"Input {in_channels}x{image_size[0]}x{image_size[1]} does not fit model {model!r}: {e}. "
            "Use a larger `image_size`."
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
