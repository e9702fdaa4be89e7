"""A data set whose answer needs two backbones: four classes, stripes or checks (as in ``stage_textures``) of a dark
or a bright mean colour. ``stage_textures_test`` sees only the colour at its last stage; ``texture_only_test``
(registered here, its "pretrained" weights in its timm config) sees only the texture: the rectified horizontal and
vertical pixel differences, in which the mean colour cancels. Either alone is right on half the images at best;
their features concatenated separate all four classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from tests.unit.stage_textures import SIZE, StageTextures
from tests.unit.stage_textures import register as register_colour

NAME = "texture_only_test"
CLASSES = ("dark_stripes", "dark_checks", "bright_stripes", "bright_checks")


def write_union_textures(root: Path, per_class: int = 10, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows, columns = np.indices((SIZE, SIZE))
    for k, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        sign = np.where(columns % 2 == 0, 1.0, -1.0) if k % 2 == 0 else np.where((rows + columns) % 2 == 0, 1.0, -1.0)
        for i in range(per_class):
            mean = rng.uniform(150, 180, 3) if k >= 2 else rng.uniform(75, 105, 3)
            pixels = mean + sign[..., None] * rng.uniform(30, 60) + rng.normal(0, 2, (SIZE, SIZE, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB").save(root / name / f"{i:03d}.png")
    return root


class TextureOnly(nn.Module):
    """One stage (stride 2): ``StageTextures``' first convolution without its mean-colour channel and its padding,
    rectified and averaged over 2x2. timm's interface: ``forward_features``, ``forward_head``, ``feature_info``, ``group_matcher``."""

    def __init__(self, num_classes: int = 0, global_pool: str = "avg", **kwargs):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, bias=False)  # no padding: a zero border would show the colour
        self.num_features, self.num_classes = 4, 0
        self.feature_info = [{"num_chs": 4, "reduction": 2, "module": "stem"}]
        with torch.no_grad():
            self.stem.weight.copy_(StageTextures().stem.weight[1:])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(torch.relu(self.stem(x)), 2)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x.mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def group_matcher(self, coarse: bool = False) -> dict:
        return {"stem": r"^stem"}


default_cfgs = generate_default_cfgs({NAME: {
    "state_dict": TextureOnly().state_dict(), "num_classes": 0, "input_size": (3, SIZE, SIZE), "crop_pct": 1.0,
    "interpolation": "bilinear", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}})


def register() -> tuple[str, str]:
    """Register both backbones in timm (once); their names, the colour's first."""
    import timm

    colour = register_colour()
    if not timm.is_model(NAME):
        @register_model
        def texture_only_test(pretrained: bool = False, **kwargs) -> TextureOnly:
            return build_model_with_cfg(TextureOnly, NAME, pretrained, **kwargs)

    return colour, NAME
