"""Where a network looked, from Captum: Grad-CAM on its last feature map, occlusion sensitivity and integrated
gradients. Every map is (H, W) over the input image, for one class."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cnnkit.inspection.network import ScoreModel


@dataclass(frozen=True)
class Attribution:
    heat: np.ndarray  # (H, W) over the input
    method: str
    target: int  # class index
    note: str  # what the values mean, for the legend


def _inputs(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, C) uint8 to (N, C, H, W) floats in [0, 1] that take gradients."""
    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float() / 255.0
    return x.requires_grad_(True)


def grad_cam(model: ScoreModel, images: np.ndarray, targets: list[int]) -> np.ndarray:
    """Class activation maps of each image for its target class on the network's last feature map, scaled to
    [0, 1] per image (0 everywhere when nothing speaks for the class): (N, H, W).

    The element-wise form of Grad-CAM (HiResCAM, Draelos and Carin 2020): gradient of the class's logit times the
    activation, summed over channels, rectified, upsampled bilinearly to the input. With a globally pooled head it
    equals Grad-CAM (Selvaraju et al.), whose gradients are the same at every position; with a flatten and dense
    head (cnnkit's scratch CNNs) Grad-CAM's averaged gradients can cancel out, this form cannot."""
    from captum.attr import LayerAttribution, LayerGradientXActivation

    model = model.eval()
    x = _inputs(images)
    product = LayerGradientXActivation(model, model.feature_map).attribute(x, target=list(targets))
    cam = product.detach().sum(1, keepdim=True).clamp(min=0)
    cam = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), "bilinear")[:, 0].clamp(min=0)
    peak = cam.flatten(1).amax(1).view(-1, 1, 1)
    return torch.where(peak > 0, cam / peak.clamp(min=1e-12), torch.zeros_like(cam)).numpy()


def occlusion_window(image_size: tuple[int, int]) -> int:
    """The occluding square's side: an eighth of the shorter side, at least 2 pixels."""
    return max(2, min(image_size) // 8)


def occlusion(model: ScoreModel, image: np.ndarray, target: int, window: int | None = None,
              fill: tuple[float, ...] | None = None) -> np.ndarray:
    """Occlusion sensitivity (Zeiler and Fergus): the drop in the class's probability when a ``window`` square
    (default ``occlusion_window``) is replaced by ``fill`` (the training images' mean colour), slid by half its side;
    each pixel gets the mean drop of the windows that cover it. (H, W), positive where hiding the pixels hurts."""
    from captum.attr import Occlusion

    model = model.eval()
    x = _inputs(image[None]).detach()
    channels, height, width = x.shape[1:]
    window = window or occlusion_window((height, width))
    stride = max(1, window // 2)
    baseline = torch.tensor(fill if fill is not None else [0.5] * channels, dtype=torch.float32).view(1, -1, 1, 1)
    with torch.no_grad():
        drop = Occlusion(model).attribute(x, target=target, sliding_window_shapes=(channels, window, window),
                                          strides=(channels, stride, stride), baselines=baseline,
                                          perturbations_per_eval=64)
    return drop[0, 0].numpy()


def integrated_gradients(model: ScoreModel, image: np.ndarray, target: int, steps: int = 32,
                         fill: tuple[float, ...] | None = None) -> tuple[np.ndarray, float]:
    """Integrated gradients (Sundararajan et al.) of the class's logit from a plain image of ``fill`` (the training
    images' mean colour) to the image, summed over colour channels: (H, W), positive where the pixels raise the
    logit, and the completeness error (|sum of attributions - logit difference|, small when ``steps`` suffice)."""
    from captum.attr import IntegratedGradients

    model = model.eval()
    x = _inputs(image[None]).detach()
    baseline = torch.ones_like(x) * torch.tensor(fill if fill is not None else [0.5] * x.shape[1],
                                                 dtype=torch.float32).view(1, -1, 1, 1)
    attributions, delta = IntegratedGradients(model).attribute(x, baselines=baseline, target=target, n_steps=steps,
                                                              internal_batch_size=16,
                                                              return_convergence_delta=True)
    return attributions.detach()[0].sum(0).numpy(), float(delta.abs().max())
