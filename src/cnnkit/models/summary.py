"""A Keras-like model summary: output shape, parameters and receptive field of every layer."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from cnnkit.errors import ModelError
from cnnkit.models.receptive_field import WHOLE_INPUT, next_receptive_field

@dataclass(frozen=True)
class LayerInfo:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    trainable: int
    rf_size: tuple[int, int] | None  # (height, width) in input pixels; None: the whole input
    rf_jump: tuple[int, int] | None  # input pixels between neighbouring outputs


@dataclass(frozen=True)
class ModelSummary:
    name: str
    input_shape: tuple[int, int, int]
    layers: list[LayerInfo]
    total_params: int
    trainable_params: int
    chain: bool = True  # each layer takes what the one before gave: the receptive fields are exact

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def format(self) -> str:
        header = ("Layer (type)", "Output Shape", "Param #", "Receptive field (size / jump)")
        rows = [(f"{layer.name} ({layer.kind})", "(None, " + ", ".join(map(str, layer.output_shape)) + ")",
                 f"{layer.params:,}", _format_rf(layer)) for layer in self.layers]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        rule = "-" * (sum(widths) + 6)
        c, h, w = self.input_shape
        return "\n".join(row.rstrip() for row in [
            f'Model: "{self.name}"   input: {c}x{h}x{w}', rule, line.format(*header), "=" * len(rule),
            *[line.format(*r) for r in rows], "=" * len(rule),
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
            *([] if self.chain else [
                "Receptive fields follow the layers in order; this network branches or upsamples, so they are "
                "approximate (`cnnkit summary --receptive-field LAYER` measures one)."]),
        ])


def _format_rf(layer: LayerInfo) -> str:
    if layer.rf_size is WHOLE_INPUT:
        return "whole input"
    (rh, rw), (jh, jw) = layer.rf_size, layer.rf_jump
    size = f"{rh}x{rw}"
    jump = str(jh) if jh == jw else f"{jh}x{jw}"
    return f"{size} / {jump}"


def summary(
    model: nn.Module | str,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 10,
    print_fn: Callable[[str], None] | None = None,
    strategy: str = "scratch",
    unfreeze: int | None = None,
    **model_options,
) -> ModelSummary:
    """Summarise ``model`` (a module, or a model name built on the meta device: no memory, no weights).

    For a backbone, ``strategy`` "transfer" freezes it and "finetune" leaves its last ``unfreeze`` stages (default all)
    trainable, as in the second phase of fine-tuning; the trainable and frozen counts show the difference.
    Receptive fields are followed along the layers in the order they run, exact for sequential networks.
    """
    name = model if isinstance(model, str) else type(model).__name__
    if isinstance(model, str):
        from cnnkit.models import create_model, data_config

        if input_shape is None:
            input_shape = (3, *data_config(model).build_size)
        with torch.device("meta"):
            model = create_model(model, num_classes, input_shape[0], tuple(input_shape[1:]), **model_options)
    if input_shape is None:
        raise ValueError("input_shape (channels, height, width) is needed to summarise a module.")
    if strategy != "scratch":
        if not getattr(model, "has_backbone", False):
            raise ModelError(f"strategy={strategy!r} applies to timm backbones, not to {name!r}.")
        model.set_trainable_stages(0 if strategy == "transfer" else (unfreeze or -1))
        name = f"{name}, {strategy}" + (f" (last {unfreeze} stages)" if strategy == "finetune" and unfreeze else "")
    device = next(model.parameters()).device
    records: list[tuple[str, nn.Module, tuple[int, ...], tuple[int, ...] | None]] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: records.append(
        (n, mod, tuple(out.shape[1:]), tuple(inp[0].shape[1:]) if inp and torch.is_tensor(inp[0]) else None)))
        for n, m in model.named_modules() if not list(m.children())]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    layers, size, jump = [], (1, 1), (1, 1)
    takes = [tuple(input_shape)] + [shape for _, _, shape, _ in records[:-1]]  # a flatten between keeps the count
    chain = all(given is not None and math.prod(given) == math.prod(expected)
                and not isinstance(module, (nn.ConvTranspose2d, nn.Upsample))
                for (_, module, _, given), expected in zip(records, takes))
    for layer_name, module, shape, _ in records:
        size, jump = next_receptive_field(module, size, jump)
        params = sum(p.numel() for p in module.parameters(recurse=False))
        trainable = sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
        layers.append(LayerInfo(layer_name, type(module).__name__, shape, params, trainable, size, jump))
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    result = ModelSummary(name, tuple(input_shape), layers, total, trainable, chain)
    if print_fn is not None:
        print_fn(result.format())
    return result
