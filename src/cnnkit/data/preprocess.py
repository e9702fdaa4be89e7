"""What the network expects of its input; saved with every run and applied identically in training and prediction."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MAX_SIDE = 4096  # the largest input side a run may declare


@dataclass(frozen=True)
class Preprocessing:
    """Images are resized to ``image_size`` (height, width), given ``channels``, scaled to [0, 1], then standardised.

    ``crop_pct`` None stretches each image to the size; a number keeps its aspect ratio and cuts the centre.
    """

    image_size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    crop_pct: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        """Read and check (ValueError names what is wrong: a crafted or damaged record must not run)."""
        prep = cls(tuple(int(s) for s in data["image_size"]), int(data["channels"]),
                   tuple(float(m) for m in data["mean"]), tuple(float(s) for s in data["std"]),
                   data.get("interpolation", "bilinear"), data.get("crop_pct"))
        if len(prep.image_size) != 2 or not all(0 < s <= MAX_SIDE for s in prep.image_size):
            raise ValueError(f"image_size {prep.image_size} is not (height, width) in 1..{MAX_SIDE}")
        if prep.channels not in (1, 3) or len(prep.mean) != prep.channels or len(prep.std) != prep.channels:
            raise ValueError(f"channels {prep.channels} with mean {prep.mean} and std {prep.std}")
        if not all(s > 0 and s == s for s in prep.std) or not all(m == m for m in prep.mean):
            raise ValueError(f"std {prep.std} must be positive (and mean {prep.mean} numbers)")
        if prep.crop_pct is not None and not 0 < float(prep.crop_pct) <= 1:
            raise ValueError(f"crop_pct {prep.crop_pct} is not in (0, 1]")
        if prep.interpolation not in ("bilinear", "nearest", "bicubic"):
            raise ValueError(f"interpolation {prep.interpolation!r} is not bilinear, nearest or bicubic")
        return prep


def channel_stats(images, chunk: int = 256) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units of (N, H, W, C) uint8 images (an array, or lazily decoded images),
    ``chunk`` images at a time: two passes, memory of one chunk in float64."""
    n = len(images)
    if n == 0:
        raise ValueError("channel statistics of no images")
    count, total = 0, 0.0
    for start in range(0, n, chunk):
        part = np.asarray(images[start:start + chunk], dtype=np.float64).reshape(-1, images.shape[-1]) / 255.0
        count, total = count + len(part), total + part.sum(axis=0)
    mean = total / count
    squares = 0.0
    for start in range(0, n, chunk):
        part = np.asarray(images[start:start + chunk], dtype=np.float64).reshape(-1, images.shape[-1]) / 255.0
        squares = squares + ((part - mean) ** 2).sum(axis=0)
    std = np.maximum(np.sqrt(squares / count), 1e-3)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def standardize(images, preprocessing: Preprocessing):
    """(N, C, H, W) uint8 tensor -> float32, scaled to [0, 1], minus mean, over std; on the tensor's device."""
    return normalize(images.float() / 255.0, preprocessing)


def normalize(images, preprocessing: Preprocessing):
    """(N, C, H, W) float tensor in [0, 1] (after augmentation) -> minus mean, over std."""
    import torch

    mean = torch.tensor(preprocessing.mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(preprocessing.std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images - mean) / std
