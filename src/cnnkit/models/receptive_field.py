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




def _padding(module: nn.Module, kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[float, float]:
    padding = getattr(module, "padding", 0)
    if padding == "valid":
        return 0.0, 0.0
    if padding == "same":
        return tuple(dilation[i] * (kernel[i] - 1) / 2 for i in range(2))
    return tuple(float(p) for p in _pair(padding))


def next_unit_centre(module: nn.Module, start, jump):
    """Where the first output unit of ``module`` is centred, in input pixels (pixel centres at 0, 1, ...):
    start' = start + ((k_eff - 1) / 2 - padding) * j, per axis."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        kernel, dilation = _pair(module.kernel_size), _pair(getattr(module, "dilation", 1))
        padding = _padding(module, kernel, dilation)
        start = tuple(start[i] + (dilation[i] * (kernel[i] - 1) / 2 - padding[i]) * jump[i] for i in range(2))
    return start


def unit_receptive_field(layers: list[tuple[str, nn.Module]], layer: str, unit: tuple[int, int]):
    """The input pixels unit (row, column) of ``layer`` sees, following ``layers`` (name, module) in the order they
    run: (top, left, bottom, right), inclusive and possibly beyond the image (padding), or None when the unit sees
    the whole input. Exact for networks that run their layers one after the other."""
    size, jump, start = (1, 1), (1, 1), (0.0, 0.0)
    for name, module in layers:
        start = next_unit_centre(module, start, jump) if size is not WHOLE_INPUT else start
        size, jump = next_receptive_field(module, size, jump)
        if name == layer:
            if size is WHOLE_INPUT:
                return None
            centre = [start[i] + unit[i] * jump[i] for i in range(2)]
            half = [(size[i] - 1) / 2 for i in range(2)]
            return (centre[0] - half[0], centre[1] - half[1], centre[0] + half[0], centre[1] + half[1])
    raise KeyError(layer)
