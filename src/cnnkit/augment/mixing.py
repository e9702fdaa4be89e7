"""Mixup (Zhang et al., 2018) and CutMix (Yun et al., 2019): virtual samples with soft targets.

Kept rather than ``timm.data.Mixup``, on purpose: timm's refuses odd batches (the last batch of an epoch often is)
and draws λ from numpy's global generator, outside the seed that makes a cnnkit run, and its resume, repeatable."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mix_batch(images: torch.Tensor, labels: torch.Tensor, num_classes: int, mixup: float = 0.0,
              cutmix: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mix each image with a random partner from the batch; return images, soft targets and the weight λ.

    One λ ~ Beta(α, α) per batch. Mixup: λ·x + (1-λ)·x_partner. CutMix: a box of the partner pasted in, λ set to the
    share of pixels kept. Targets are λ·onehot(y) + (1-λ)·onehot(y_partner). With both α > 0, each batch uses one
    of the two at random. With neither, images are returned with one-hot targets and λ = 1. Multi-label ``labels``
    (0/1 rows, N x classes) are the targets as they are, mixed the same way.
    """
    targets = labels.float() if labels.ndim == 2 else F.one_hot(labels, num_classes).float()
    if mixup <= 0 and cutmix <= 0:
        return images, targets, 1.0
    use_cutmix = cutmix > 0 and (mixup <= 0 or bool(torch.rand(()) < 0.5))
    alpha = cutmix if use_cutmix else mixup
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    partner = torch.randperm(len(labels), device=labels.device)
    if use_cutmix:
        images, lam = _paste_box(images, partner, lam)
    else:
        images = lam * images + (1.0 - lam) * images[partner]
    return images, lam * targets + (1.0 - lam) * targets[partner], lam


def _paste_box(images: torch.Tensor, partner: torch.Tensor, lam: float) -> tuple[torch.Tensor, float]:
    height, width = images.shape[-2:]
    ratio = (1.0 - lam) ** 0.5
    box_h, box_w = int(round(height * ratio)), int(round(width * ratio))
    cy, cx = int(torch.randint(height, ())), int(torch.randint(width, ()))
    top, bottom = max(cy - box_h // 2, 0), min(cy + (box_h - box_h // 2), height)
    left, right = max(cx - box_w // 2, 0), min(cx + (box_w - box_w // 2), width)
    mixed = images.clone()
    mixed[..., top:bottom, left:right] = images[partner][..., top:bottom, left:right]
    return mixed, 1.0 - (bottom - top) * (right - left) / (height * width)
