"""A data set whose answer is known: fine textures that an earlier stage of a backbone separates and its last stage
pools away, and the backbone that does so by construction (registered in timm as ``stage_textures_test``, with its
"pretrained" weights in its timm config, so the probe and ``--pretrained`` load them offline).

Class ``stripes``: vertical stripes one pixel wide; class ``checks``: a checkerboard of one-pixel squares; both of the
same random mean colour and contrast. The backbone's first stage measures the horizontal and the vertical pixel
differences (checks have both, stripes only the horizontal); its last stage sees only the mean colour, which says
nothing of the class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

NAME = "stage_textures_test"
SIZE = 32


def texture(label: int, rng: np.random.Generator, size: int = SIZE) -> Image.Image:
    """Stripes (0) or checks (1) of a random mean colour and contrast, plus faint noise."""
    rows, columns = np.indices((size, size))
    sign = np.where(columns % 2 == 0, 1.0, -1.0) if label == 0 else np.where((rows + columns) % 2 == 0, 1.0, -1.0)
    mean = rng.uniform(80, 170, 3)
    contrast = rng.uniform(30, 60)
    pixels = mean + sign[..., None] * contrast + rng.normal(0, 2, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


def write_textures(root: Path, per_class: int = 16, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for label, name in enumerate(["stripes", "checks"]):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            texture(label, rng).save(root / name / f"{name}_{i:03d}.png")
    return root


class StageTextures(nn.Module):
    """Three stages (strides 2, 4 and 8), timm's interface: ``forward_features``, ``forward_head``,
    ``forward_intermediates``, ``feature_info``, ``group_matcher``. Stage 1: the mean colour and the rectified
    horizontal and vertical differences, averaged over 2x2; stage 2: averaged again; stage 3 (the last): eight
    rectified copies of the mean colour alone."""

    def __init__(self, num_classes: int = 0, global_pool: str = "avg", **kwargs):
        super().__init__()
        self.stem = nn.Conv2d(3, 5, 3, padding=1, bias=False)
        self.last = nn.Conv2d(5, 8, 1)
        self.pool2 = nn.AvgPool2d(2)
        self.num_features = 8
        self.num_classes = 0
        self.feature_info = [{"num_chs": 5, "reduction": 2, "module": "stem"},
                             {"num_chs": 5, "reduction": 4, "module": "pool2"},
                             {"num_chs": 8, "reduction": 8, "module": "last"}]
        with torch.no_grad():
            weight = torch.zeros(5, 3, 3, 3)
            weight[0, :, 1, 1] = 1 / 3  # the mean colour
            for k, (dy, dx) in enumerate([(0, 1), (1, 0)]):  # x[i, j] - x[i + dy, j + dx], either sign
                weight[1 + 2 * k, :, 1, 1], weight[1 + 2 * k, :, 1 + dy, 1 + dx] = 1 / 3, -1 / 3
                weight[2 + 2 * k] = -weight[1 + 2 * k]
            self.stem.weight.copy_(weight)
            self.last.weight.zero_()
            self.last.weight[:, 0, 0, 0] = torch.linspace(0.5, 2.0, 8)
            self.last.bias.copy_(torch.linspace(-1.0, 1.0, 8))

    def forward_intermediates(self, x: torch.Tensor, indices=None, **kwargs):
        maps = []
        x = self.pool2(torch.relu(self.stem(x)))
        maps.append(x)
        x = self.pool2(x)
        maps.append(x)
        x = self.pool2(torch.relu(self.last(x)))
        wanted = range(3) if indices is None else indices
        return x, [m for i, m in enumerate(maps) if i in wanted]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_intermediates(x)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x.mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def group_matcher(self, coarse: bool = False) -> dict:
        return {"stem": r"^stem", "blocks": r"^last"}


# timm's register_model reads the pretrained configs from ``default_cfgs`` of the builder's module
default_cfgs = generate_default_cfgs({NAME: {
    "state_dict": StageTextures().state_dict(), "num_classes": 0, "input_size": (3, SIZE, SIZE), "crop_pct": 1.0,
    "interpolation": "bilinear", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}})


def register() -> str:
    """Register the backbone in timm (once), its weights as its pretrained weights; its name."""
    import timm

    if timm.is_model(NAME):
        return NAME

    @register_model
    def stage_textures_test(pretrained: bool = False, **kwargs) -> StageTextures:
        return build_model_with_cfg(StageTextures, NAME, pretrained, **kwargs)

    return NAME
