"""The receptive field of one unit of a chosen layer, drawn over an input (``cnnkit summary --receptive-field``): the
theoretical field (what the layers' kernels and strides let the unit see) as a box, and the effective one (how
much each input pixel moves the unit: |gradient|) as a heat map."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cnnkit.data.preprocess import Preprocessing, normalize
from cnnkit.errors import ConfigError
from cnnkit.models.receptive_field import unit_receptive_field
from cnnkit.plots import figure_png, pyplot


def _leaves_in_order(network: nn.Module, x: torch.Tensor) -> tuple[list[tuple[str, nn.Module]], dict, bool]:
    """(name, module) of every leaf module in the order they first run, their first outputs, and whether they form
    one chain (each takes what the one before gave, nothing upsamples) up to each leaf: name -> bool."""
    order, outputs, chained = [], {}, {}
    names = {m: n for n, m in network.named_modules() if n and not list(m.children())}
    last = [x.numel(), True]  # the previous output's size, and whether the chain holds so far

    def hook(module, inputs, output):
        if module in outputs:
            return
        takes = inputs[0].numel() if inputs and torch.is_tensor(inputs[0]) else None  # a flatten keeps the count
        last[1] = last[1] and takes == last[0] and not isinstance(module, (nn.ConvTranspose2d, nn.Upsample))
        order.append((names[module], module))
        outputs[module] = output.clone() if torch.is_tensor(output) else output  # safe from in-place layers
        chained[names[module]] = last[1]
        last[0] = output.numel() if torch.is_tensor(output) else None
    hooks = [m.register_forward_hook(hook) for m in names]
    try:
        network(x)
    finally:
        for h in hooks:
            h.remove()
    return order, {names[m]: out for m, out in outputs.items()}, chained


def _support(effective: np.ndarray) -> tuple[float, float, float, float] | None:
    rows, cols = np.nonzero(effective)
    if not len(rows):
        return None
    return float(rows.min()), float(cols.min()), float(rows.max()), float(cols.max())


def receptive_field(network: nn.Module, layer: str, image: np.ndarray, preprocessing: Preprocessing,
                    unit: tuple[int, int] | None = None) -> dict:
    """For unit (row, column) of ``layer``'s output (default: its centre), on ``image`` (H, W, C) uint8: ``box``
    (top, left, bottom, right) in input pixels, None when the unit sees the whole input; ``effective`` (H, W), the
    |gradient| of the unit's channels' sum with respect to each input pixel; ``size``, ``layer_shape``, ``unit``.

    The box follows kernels, strides and padding layer by layer, exact when the layers up to ``layer`` form one
    chain. Where they do not (a shortcut with a stride of its own, a transposed convolution), ``measured`` is True
    and the box is where the gradient reaches: the field as this image and these weights show it, which a
    rectifier can only shrink."""
    network = network.eval()
    x = normalize(torch.from_numpy(np.array(image[None])).permute(0, 3, 1, 2).float() / 255.0, preprocessing)
    x = x.contiguous().requires_grad_(True)
    order, outputs, chained = _leaves_in_order(network, x)
    if layer not in outputs:
        names = [n for n, _ in order]
        raise ConfigError(f"Layer {layer!r} is not in this network; its layers, as `cnnkit summary` lists "
                          f"them: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''}.")
    output = outputs[layer]
    if not torch.is_tensor(output):
        raise ConfigError(f"Layer {layer!r} does not output one tensor; choose another layer.")
    if output.ndim == 4:
        unit = unit or (output.shape[2] // 2, output.shape[3] // 2)
        if not (0 <= unit[0] < output.shape[2] and 0 <= unit[1] < output.shape[3]):
            raise ConfigError(f"Unit {unit} is outside {layer!r}'s output of {output.shape[2]}x{output.shape[3]}.")
        target = output[0, :, unit[0], unit[1]].sum()
    else:
        unit, target = None, output[0].sum()
    (gradient,) = torch.autograd.grad(target, x)
    effective = gradient[0].abs().sum(0).numpy()
    measured = not chained[layer]  # a shortcut with its own stride, an upsampling: the layer-by-layer rule fails
    box = _support(effective) if measured else unit_receptive_field(order, layer, unit or (0, 0))
    size = None if box is None else (round(box[2] - box[0]) + 1, round(box[3] - box[1]) + 1)
    return {"box": box, "size": size, "unit": unit, "layer": layer, "layer_shape": list(output.shape[1:]),
            "effective": effective, "measured": measured}


def receptive_field_png(image: np.ndarray, field: dict) -> bytes:
    """The input with the unit's theoretical receptive field as a box, beside the effective field's heat map."""
    from matplotlib.patches import Rectangle

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.2))
    gray = image.shape[-1] == 1
    axes[0].imshow(image[..., 0] if gray else image[..., :3], cmap="gray" if gray else None, vmin=0, vmax=255)
    shown = axes[1].imshow(field["effective"], cmap="magma")
    fig.colorbar(shown, ax=axes[1], fraction=0.046, label="|d unit / d pixel|")
    if field["box"] is not None:
        top, left, bottom, right = field["box"]
        for ax in axes:
            ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False,
                                   edgecolor="cyan", linewidth=2))
            ax.set_xlim(-0.5, image.shape[1] - 0.5)
            ax.set_ylim(image.shape[0] - 0.5, -0.5)
    for ax in axes:
        ax.axis("off")
    where = "the whole input" if field["box"] is None else f"{field['size'][0]}x{field['size'][1]} pixels (box)"
    if field.get("measured"):
        where += ", measured from the gradient (the network branches or upsamples)"
    unit = "" if field["unit"] is None else f", unit (row {field['unit'][0]}, column {field['unit'][1]})"
    fig.suptitle(f"Receptive field of {field['layer']} {tuple(field['layer_shape'])}{unit}: {where}\n"
                 "left: the theoretical field over the input; right: the effective field, how much each pixel "
                 "moves the unit", fontsize=9)
    fig.tight_layout()
    return figure_png(fig)
