"""Small from-scratch CNNs: ``simple_cnn`` (two conv blocks and a dense layer), ``patch_cnn`` (unpadded, for
scanning large images) and ``tiny_cnn`` for tests."""

from __future__ import annotations

from torch import nn

from cnnkit.models._registry import register_model
from cnnkit.models.network import ConvNet, dense_neck, feature_shape


def conv_block(in_channels: int, out_channels: int, convs: int = 1, batch_norm: bool = True,
               padding: str = "same") -> list[nn.Module]:
    """``convs`` x (3x3 conv, 'same' or 'valid', optional batch norm, ReLU), then 2x2 max pooling."""
    layers: list[nn.Module] = []
    for i in range(convs):
        layers.append(nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3,
                                padding=1 if padding == "same" else 0, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU())
    layers.append(nn.MaxPool2d(2))
    return layers


def block_net(name: str, num_classes: int, in_channels: int, image_size: tuple[int, int], filters: tuple[int, ...],
              convs_per_block: int, hidden: int, batch_norm: bool, dropout: float, padding: str = "same") -> ConvNet:
    """Conv blocks, flatten, (dropout) dense ``hidden`` + ReLU, dropout, classifier; ``hidden=0`` skips the dense."""
    layers: list[nn.Module] = []
    channels = in_channels
    for width in filters:
        layers += conv_block(channels, width, convs_per_block, batch_norm, padding)
        channels = width
    features = nn.Sequential(*layers)
    c, h, w = feature_shape(features, in_channels, image_size, name)
    hidden_layers = (hidden,) if hidden else ()
    return ConvNet(features, dense_neck(c * h * w, hidden_layers, nn.ReLU, dropout), hidden or c * h * w,
                   num_classes, dropout)


@register_model()
def simple_cnn(num_classes: int = 10, in_channels: int = 3, image_size: tuple[int, int] = (32, 32),
               filters: tuple[int, ...] = (32, 64), hidden: int = 128, batch_norm: bool = True,
               dropout: float = 0.25) -> ConvNet:
    """Two conv blocks (3x3 conv, batch norm, ReLU, max pool) and a dense layer."""
    return block_net("simple_cnn", num_classes, in_channels, image_size, tuple(filters), 1, hidden, batch_norm,
                     dropout)


@register_model()
def patch_cnn(num_classes: int = 10, in_channels: int = 3, image_size: tuple[int, int] = (32, 32),
              filters: tuple[int, ...] = (32, 64), convs_per_block: int = 2, hidden: int = 128,
              batch_norm: bool = True, dropout: float = 0.25) -> ConvNet:
    """Unpadded conv blocks (2 x valid 3x3 conv, batch norm, ReLU, max pool) and a dense layer: scanning a large
    image with it fully convolutionally gives exactly the probabilities of each patch classified alone."""
    return block_net("patch_cnn", num_classes, in_channels, image_size, tuple(filters), convs_per_block, hidden,
                     batch_norm, dropout, padding="valid")


@register_model()
def tiny_cnn(num_classes: int = 10, in_channels: int = 3, image_size: tuple[int, int] = (16, 16),
             filters: tuple[int, ...] = (8,), hidden: int = 0, batch_norm: bool = False,
             dropout: float = 0.0) -> ConvNet:
    """One small conv block and a linear classifier: for tests and quick checks."""
    return block_net("tiny_cnn", num_classes, in_channels, image_size, tuple(filters), 1, hidden, batch_norm,
                     dropout)
