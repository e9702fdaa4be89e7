"""LeNet-5 (LeCun et al., 1998), in the form taught with Keras: 61,706 parameters on 1x32x32 inputs."""

from __future__ import annotations

from torch import nn

from cnnkit.errors import check_choice
from cnnkit.models._registry import register_model
from cnnkit.models.network import ConvNet, dense_neck, feature_shape

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


@register_model(default_image_size=(32, 32))
def lenet5(num_classes: int = 10, in_channels: int = 1, image_size: tuple[int, int] = (32, 32),
           activation: str = "tanh", pooling: str = "avg") -> ConvNet:
    """LeNet-5: conv 6@5x5, pool 2, conv 16@5x5, pool 2, dense 120, 84, classes."""
    check_choice("activation", activation, set(ACTIVATIONS), "lenet5")
    check_choice("pooling", pooling, set(POOLS), "lenet5")
    act, pool = ACTIVATIONS[activation], POOLS[pooling]
    features = nn.Sequential(
        nn.Conv2d(in_channels, 6, kernel_size=5), act(), pool(2),
        nn.Conv2d(6, 16, kernel_size=5), act(), pool(2),
    )
    c, h, w = feature_shape(features, in_channels, image_size, "lenet5")
    return ConvNet(features, dense_neck(c * h * w, (120, 84), act, 0.0), 84, num_classes)
