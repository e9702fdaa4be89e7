"""What a model expects of its images, decided once for a model name and its weights (timm's ``pretrained_cfg`` and
``resolve_model_data_config``): input size, channels, resampling, centre crop and standardisation.

cnnkit's own networks take the data's way (size from the data unless they have one, channels from the images,
statistics of the train split); a timm backbone takes its pretrained config's way, and with pretrained weights the
mean and std those weights were trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cnnkit.errors import ConfigError
from cnnkit.models._registry import get_model_entry, is_registered
from cnnkit.models.pretrained import pretrained_normalization
from cnnkit.models.transfer import backbone_config

FALLBACK_IMAGE_SIZE = (32, 32)  # to build a model without a size of its own before any image is seen
RESAMPLING = ("bilinear", "nearest", "bicubic")  # what data.decode resizes with; other timm choices read bilinear


@dataclass(frozen=True)
class ModelDataConfig:
    """How images are decoded and standardised for one model (``data_config``'s answer).

    ``image_size`` (height, width): the size asked for, else the model's own; None lets the data decide
    (``data.prepare.auto_image_size``). ``channels`` None: 1 if every image is grayscale, else 3. ``crop_pct`` None
    stretches each image to the size; a number keeps the aspect ratio and cuts the centre. ``normalization``
    (mean, std): the pretrained weights'; None: the train split's own statistics.
    """

    image_size: tuple[int, int] | None
    channels: int | None = None
    interpolation: str = "bilinear"
    crop_pct: float | None = None
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    backbone: bool = False  # a timm backbone (its pretrained config applies), not one of cnnkit's own networks

    @property
    def build_size(self) -> tuple[int, int]:
        """The size to build the network at before any image is seen (a probe, a summary)."""
        return tuple(self.image_size or FALLBACK_IMAGE_SIZE)


def default_image_size(name: str) -> tuple[int, int] | None:
    """The model's own input size: a builder's declared one (None: the data decides), a backbone's pretrained one."""
    if is_registered(name):
        return get_model_entry(name).default_image_size
    return tuple(backbone_config(name)["input_size"][1:])


def data_config(name: str, pretrained: bool = False, weights: str | Path | None = None,
                image_size: tuple[int, int] | None = None, channels: int | None = None) -> ModelDataConfig:
    """How images are decoded and standardised for the model ``name`` (``pretrained``: with the ImageNet weights,
    or ``weights``), given the ``image_size`` and ``channels`` asked for (None: the model's or the data's)."""
    size = tuple(image_size) if image_size else default_image_size(name)
    if is_registered(name):
        return ModelDataConfig(size, channels)
    if channels == 1:
        raise ConfigError("Backbones take 3 channels; grayscale images are repeated to 3 (leave `channels` unset).")
    cfg = backbone_config(name)
    interpolation = cfg["interpolation"] if cfg["interpolation"] in RESAMPLING else "bilinear"
    normalization = pretrained_normalization(name, weights) if pretrained else None
    return ModelDataConfig(size, 3, interpolation, cfg["crop_pct"], normalization, backbone=True)
