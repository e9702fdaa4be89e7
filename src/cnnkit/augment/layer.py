"""``Augmentation``: a module that transforms batches at random, per sample, in training mode only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from cnnkit.config.augment import AugmentSpec


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """torch's generators (the CPU's and ``device``'s) seeded with ``seed`` inside, restored after: random transforms
    drawn inside depend on ``seed`` alone, and no draw outside moves."""
    other = device.type != "cpu"
    with torch.random.fork_rng(devices=[device] if other else [], device_type=device.type if other else None):
        torch.manual_seed(seed)
        yield


def build_transforms(spec: AugmentSpec, image_size: tuple[int, int]) -> list[nn.Module]:
    """kornia transforms for ``spec``: flips, crop, one affine (rotate, translate, zoom, shear), perspective, then
    photometric ones. Geometric transforms fill uncovered pixels with 0 (black)."""
    import kornia.augmentation as K

    out: list[nn.Module] = []
    if "h" in spec.flips:
        out.append(K.RandomHorizontalFlip(p=0.5))
    if "v" in spec.flips:
        out.append(K.RandomVerticalFlip(p=0.5))
    if spec.get("crop"):
        out.append(K.RandomResizedCrop(tuple(image_size), scale=(1.0 - spec.get("crop"), 1.0), p=1.0))
    rotate, translate, zoom, shear = (spec.get(n) for n in ("rotate", "translate", "zoom", "shear"))
    if rotate or translate or zoom or shear:
        out.append(K.RandomAffine(
            degrees=rotate or 0.0, translate=(translate, translate) if translate else None,
            scale=(1.0 - zoom, 1.0 + zoom) if zoom else None, shear=shear or None, p=1.0))
    if spec.get("perspective"):
        out.append(K.RandomPerspective(distortion_scale=spec.get("perspective"), p=0.5))
    if spec.get("brightness"):
        b = spec.get("brightness")
        out.append(K.RandomBrightness(brightness=(1.0 - b, 1.0 + b), p=1.0))
    if spec.get("contrast"):
        c = spec.get("contrast")
        out.append(K.RandomContrast(contrast=(1.0 - c, 1.0 + c), p=1.0))
    if spec.get("saturation"):
        s = spec.get("saturation")
        out.append(ColourOnly(K.RandomSaturation(saturation=(1.0 - s, 1.0 + s), p=1.0)))
    if spec.get("blur"):
        sigma = spec.get("blur")
        kernel = 2 * int(2 * sigma + 0.5) + 1
        out.append(K.RandomGaussianBlur((kernel, kernel), sigma=(0.1, sigma), p=0.5))
    if spec.get("noise"):
        out.append(K.RandomGaussianNoise(std=spec.get("noise"), p=1.0))
    return out


class ColourOnly(nn.Module):
    """A colour transform (saturation) applied to 3-channel batches; grey ones pass unchanged."""

    def __init__(self, transform: nn.Module):
        super().__init__()
        self.transform = transform

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.transform(images) if images.shape[-3] == 3 else images


class Augmentation(nn.Module):
    """Random transforms of float images in [0, 1], shape (N, C, H, W), on their device; parameters are drawn per
    sample. In eval mode it returns its input unchanged, like Keras' preprocessing layers; ``apply`` always
    transforms (test-time augmentation, previews). Outputs keep the shape and stay in [0, 1]."""

    def __init__(self, spec: AugmentSpec | str | None, image_size: tuple[int, int]):
        super().__init__()
        self.spec = spec if isinstance(spec, AugmentSpec) else AugmentSpec.parse(spec)
        self.transforms = nn.ModuleList(build_transforms(self.spec, image_size) if self.spec else [])

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        for transform in self.transforms:
            images = transform(images)
        return images.clamp(0.0, 1.0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.training or not len(self.transforms):
            return images
        return self.apply(images)

    def extra_repr(self) -> str:
        return f"spec={str(self.spec)!r}"
