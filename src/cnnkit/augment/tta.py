"""Test-time augmentation: the original, then deterministic flips, then random draws with a fixed seed."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from cnnkit.augment.layer import Augmentation, seeded


def flip_views(flips: str) -> list:
    """The deterministic flips a spec allows: horizontal, vertical, both."""
    views = []
    if "h" in flips:
        views.append(lambda x: x.flip(-1))
    if "v" in flips:
        views.append(lambda x: x.flip(-2))
    if flips == "hv":
        views.append(lambda x: x.flip(-1).flip(-2))
    return views


def tta_views(images: torch.Tensor, n: int, augmentation: Augmentation, seed: int = 0) -> Iterator[torch.Tensor]:
    """``n`` versions of a float batch in [0, 1]: itself first (n=1 is plain prediction), then the flips the run's
    spec allows, then random transforms of the spec drawn with ``seed`` (the global random state is left alone)."""
    yield images
    flips = flip_views(augmentation.spec.flips)[: n - 1]
    for flip in flips:
        yield flip(images)
    remaining = n - 1 - len(flips)
    if remaining <= 0:
        return
    with seeded(seed, images.device):
        for _ in range(remaining):
            yield augmentation.apply(images)
