"""The receptive field drawn by ``cnnkit summary --receptive-field``: the box follows the kernels, strides and
padding, and the effective field (the gradient) never leaves it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnkit.data.preprocess import Preprocessing
from cnnkit.errors import ConfigError
from cnnkit.inspection.receptive import receptive_field, receptive_field_png
from cnnkit.models import create_model


class Linear(nn.Module):
    """Two convolutions and a pooling layer, no activation: every weight is non-zero, so the gradient reaches every
    pixel of the theoretical field."""

    def __init__(self, padding: int):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(1, 2, 3, padding=padding), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3))

    def forward(self, x):
        return self.layers(x)


@pytest.mark.parametrize("padding", [0, 1])
def test_the_box_is_the_gradient_s_support(padding):
    torch.manual_seed(0)
    network = Linear(padding)
    image = np.random.default_rng(0).integers(0, 256, (20, 20, 1), dtype=np.uint8)
    grey = Preprocessing((20, 20), 1, (0.5,), (0.25,))
    field = receptive_field(network, "layers.2", image, grey, unit=(2, 3))
    # conv 3 (pad p): size 3, first unit centred at 1 - p; pool 2: size 4, jump 2, centred at 1.5 - p; conv 3:
    # size 8, centred at 3.5 - p. Unit (2, 3) is centred at (7.5 - p, 9.5 - p), its field starts 3.5 earlier.
    top, left = 4 - padding, 6 - padding
    assert field["size"] == (8, 8) and field["box"] == (top, left, top + 7, left + 7)
    rows, cols = np.nonzero(field["effective"])
    assert rows.min() >= top and rows.max() <= top + 7 and cols.min() >= left and cols.max() <= left + 7
    assert rows.max() - rows.min() >= 6  # the max-pooling picks one of each pair: the field is nearly all reached
    assert receptive_field_png(image, field).startswith(b"\x89PNG")


def test_the_effective_field_of_a_cnn_lies_inside_its_theoretical_field():
    network = create_model("vgg_small", 3, 3, (32, 32))
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    field = receptive_field(network, "features.12", image, Preprocessing((32, 32), 3, (0.5,) * 3, (0.25,) * 3))
    assert field["size"] == (14, 14)  # as the summary's table says
    top, left, bottom, right = field["box"]
    rows, cols = np.nonzero(field["effective"])
    assert len(rows) and rows.min() >= top and rows.max() <= bottom and cols.min() >= left and cols.max() <= right
    whole = receptive_field(network, "classifier", image, Preprocessing((32, 32), 3, (0.5,) * 3, (0.25,) * 3))
    assert whole["box"] is None and whole["unit"] is None
    with pytest.raises(ConfigError, match="'features.99' is not in this network"):
        receptive_field(network, "features.99", image, Preprocessing((32, 32), 3, (0.5,) * 3, (0.25,) * 3))


@pytest.mark.parametrize("model, layer", [("resnet18", "backbone.layer3.1.conv2"), ("conv_autoencoder", "decoder.4")])
def test_a_branching_or_upsampling_network_s_field_is_measured_not_followed(model, layer):
    """A shortcut with a stride of its own (ResNet) or a transposed convolution breaks the layer-by-layer rule:
    the box is where the gradient reaches, and the summary says its fields are approximate."""
    from cnnkit.models.summary import summary

    torch.manual_seed(0)
    network = create_model(model, 3, 3, (64, 64))
    image = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    field = receptive_field(network, layer, image, Preprocessing((64, 64), 3, (0.5,) * 3, (0.25,) * 3))
    rows, cols = np.nonzero(field["effective"])
    assert field["measured"] and field["box"] == (rows.min(), cols.min(), rows.max(), cols.max())
    assert not summary(model, (3, 64, 64)).chain and summary("vgg_small", (3, 64, 64)).chain
