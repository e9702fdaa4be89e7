"""Receptive fields along a network's layers: r' = r + (k_eff - 1) * j and j' = j * s, per axis."""

from __future__ import annotations

from torch import nn

WHOLE_INPUT = None  # receptive field of a unit that sees the whole input (after flatten or global pooling)


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def next_receptive_field(module: nn.Module, size, jump):
    """Receptive field after ``module``: r' = r + (k_eff - 1) * j and j' = j * s, per axis."""
    if size is WHOLE_INPUT:
        return WHOLE_INPUT, WHOLE_INPUT
    if isinstance(module, (nn.Flatten, nn.Linear, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return WHOLE_INPUT, WHOLE_INPUT
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        kernel, stride = _pair(module.kernel_size), _pair(module.stride or module.kernel_size)
        dilation = _pair(getattr(module, "dilation", 1))
        size = tuple(r + dilation[i] * (kernel[i] - 1) * jump[i] for i, r in enumerate(size))
        jump = tuple(j * stride[i] for i, j in enumerate(jump))
    return size, jump


