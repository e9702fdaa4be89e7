"""VGG-style networks (Simonyan and Zisserman, 2015): stacks of 3x3 convolutions between 2x2 max poolings."""

from __future__ import annotations

from torch import nn

from cnnkit.models._registry import register_model
from cnnkit.models.network import ConvNet, dense_neck, feature_shape
from cnnkit.models.simple_cnn import block_net

VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


@register_model()
def vgg_small(num_classes: int = 10, in_channels: int = 3, image_size: tuple[int, int] = (32, 32),
              filters: tuple[int, ...] = (32, 64, 128), hidden: int = 256, batch_norm: bool = True,
              dropout: float = 0.5) -> ConvNet:
    """Three VGG blocks of two 3x3 convolutions each, batch norm, then a dense layer."""
    return block_net("vgg_small", num_classes, in_channels, image_size, tuple(filters), 2, hidden, batch_norm,
                     dropout)


@register_model(default_image_size=(224, 224))
def vgg16(num_classes: int = 1000, in_channels: int = 3, image_size: tuple[int, int] = (224, 224),
          batch_norm: bool = False, hidden: int = 4096, dropout: float = 0.5) -> ConvNet:
    """VGG16 (configuration D): 13 convolutions and 3 dense layers; 138,357,544 parameters at 1000 classes."""
    layers: list[nn.Module] = []
    channels = in_channels
    for width, convs in VGG16_BLOCKS:
        for _ in range(convs):
            layers.append(nn.Conv2d(channels, width, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU())
            channels = width
        layers.append(nn.MaxPool2d(2))
    features = nn.Sequential(*layers)
    c, h, w = feature_shape(features, in_channels, image_size, "vgg16")
    neck = dense_neck(c * h * w, (hidden, hidden), nn.ReLU, 0.0)
    neck.insert(3, nn.Dropout(dropout))  # Flatten, Linear, ReLU, [Dropout], Linear, ReLU, then head dropout
    return ConvNet(features, neck, hidden, num_classes, dropout)
