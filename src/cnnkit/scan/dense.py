"""A patch classifier read as a fully convolutional network: one pass gives the class logits of every patch-sized
window on a grid.

- cnnkit's ``ConvNet``: the dense layers become convolutions (the first one with the window's feature-map size as its
  kernel, the others 1x1). With unpadded convolutions (``patch_cnn``) the result is exact: each output equals the
  patch classified alone. With 'same' padding (``simple_cnn``, ``vgg_*``) a window sees its real neighbours where the
  patch alone saw zero padding, so outputs are approximate within a few pixels of the window's border.
- A timm backbone with a pooling head (``TransferNet``): the backbone's feature map of the whole image is computed
  once and the head is applied to the average of each window's cells. Approximate: the backbone pads, its receptive
  field reaches far beyond the window, and the window must cover whole feature cells (size a multiple of the stride).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import ConfigError, ModelError
from cnnkit.models.network import ConvNet, feature_shape
from cnnkit.models.receptive_field import next_receptive_field
from cnnkit.models.transfer import TransferNet


def _geometry(features: nn.Module) -> tuple[int, int, bool]:
    """(stride, receptive field, unpadded) of a feature extractor, along its layers in order."""
    size, jump, unpadded = (1, 1), (1, 1), True
    for module in features.modules():
        if list(module.children()):
            continue
        size, jump = next_receptive_field(module, size, jump)
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            padding = module.padding if isinstance(module.padding, tuple) else (module.padding,)
            unpadded &= all(p == 0 for p in padding) and not getattr(module, "ceil_mode", False)
    return jump[0], max(size), unpadded


def _as_conv(linear: nn.Linear, in_channels: int, kernel: tuple[int, int], stride: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, linear.out_features, kernel, stride=stride)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.view(linear.out_features, in_channels, *kernel))
        conv.bias.copy_(linear.bias)
    return conv


class DenseNet(nn.Module):
    """Logits (N, classes, H', W') of every ``window``-sized window at steps of ``stride`` pixels."""

    window: tuple[int, int]
    stride: int
    margin: int  # context each side of a tile so that tiled equals untiled (0 when exact)
    exact: bool


class DenseConvNet(DenseNet):
    def __init__(self, net: ConvNet, in_channels: int, window: tuple[int, int], step: int = 1):
        super().__init__()
        self.features = net.features
        base_stride, rf, self.exact = _geometry(net.features)
        c, fh, fw = feature_shape(net.features, in_channels, window, "scan")
        layers: list[nn.Module] = []
        channels, first = c, True
        for module in [*net.neck, net.classifier]:
            if isinstance(module, (nn.Flatten, nn.Dropout)):
                continue
            if isinstance(module, nn.Linear):
                kernel, stride = ((fh, fw), step) if first else ((1, 1), 1)
                layers.append(_as_conv(module, channels, kernel, stride))
                channels, first = module.out_features, False
            else:
                layers.append(module)
        self.head = nn.Sequential(*layers)
        self.window, self.stride = tuple(window), base_stride * step
        self.margin = 0 if self.exact else math.ceil(rf / base_stride) * base_stride
        self.natural_stride = base_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class DenseBackboneNet(DenseNet):
    def __init__(self, net: TransferNet, window: tuple[int, int], step: int = 1):
        super().__init__()
        self.net = net
        base_stride = int(net.backbone.feature_info[-1]["reduction"])
        if window[0] % base_stride or window[1] % base_stride:
            raise ConfigError(f"The window {window} must be a multiple of the backbone's stride {base_stride}.")
        self.cells = (window[0] // base_stride, window[1] // base_stride)
        self.step = step
        self.window, self.stride, self.exact = tuple(window), base_stride * step, False
        self.margin = 4 * base_stride
        self.natural_stride = base_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.net.forward_features(x)
        pooled = F.avg_pool2d(fmap, self.cells, stride=self.step)
        n, c, h, w = pooled.shape
        flat = pooled.permute(0, 2, 3, 1).reshape(-1, c)
        logits = self.net.head(flat)
        return logits.view(n, h, w, -1).permute(0, 3, 1, 2)


def dense_network(model: nn.Module, in_channels: int, window: tuple[int, int], stride: int | None = None) -> DenseNet:
    """The fully convolutional form of ``model`` for ``window``-sized patches, its outputs ``stride`` pixels apart
    (a multiple of the network's own stride; default that stride)."""
    model = model.eval()
    if isinstance(model, ConvNet):
        probe = DenseConvNet(model, in_channels, window)
    elif isinstance(model, TransferNet):
        probe = DenseBackboneNet(model, window)
    else:
        raise ModelError(f"Scanning needs a cnnkit ConvNet or a timm backbone with a pooling head, not "
                         f"{type(model).__name__}.")
    base = probe.natural_stride
    stride = stride or base
    if stride % base:
        raise ConfigError(f"`stride` must be a multiple of the network's own stride {base}. Received: {stride}")
    if stride == base:
        return probe.eval()
    step = stride // base
    dense = DenseConvNet(model, in_channels, window, step) if isinstance(model, ConvNet) else DenseBackboneNet(
        model, window, step)
    return dense.eval()
