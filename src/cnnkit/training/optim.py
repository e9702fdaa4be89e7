"""Optimisers and learning-rate schedules by name.

Kept rather than ``timm.optim.create_optimizer_v2`` and ``timm.scheduler``, on purpose: timm's factory takes weight
decay off biases and norms by default (a different optimiser than `weight_decay` promises), and its schedulers are
stepped by hand per epoch or update, where Lightning steps a ``torch.optim.lr_scheduler`` itself (and checkpoints
it, so a resumed run goes on with the same schedule)."""

from __future__ import annotations

import torch

from cnnkit.config import TrainConfig


def create_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    lr, decay = config.lr, config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=decay, nesterov=config.momentum > 0)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=config.momentum, weight_decay=decay)
    return torch.optim.Adagrad(params, lr=lr, weight_decay=decay)


def param_groups(model: torch.nn.Module, config: TrainConfig, backbone_lr: float | None = None) -> list[dict]:
    """Trainable parameters only, at lr; with ``backbone_lr`` (fine-tuning), a backbone's at discriminative rates:
    ``backbone_lr`` for its last stage falling geometrically to a tenth of it at the first (fastai's ``slice``)."""
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    stages = [[p for p in stage if id(p) in trainable] for stage in model.stages()] if (
        backbone_lr and hasattr(model, "stages")) else []
    stages = [stage for stage in stages if stage]
    in_stages = {id(p) for stage in stages for p in stage}
    head = [p for p in model.parameters() if id(p) in trainable and id(p) not in in_stages]
    top = backbone_lr
    groups = [{"params": head, "lr": config.lr}]
    for i, stage in enumerate(stages):
        depth = (len(stages) - 1 - i) / max(1, len(stages) - 1)  # 0 for the last stage, 1 for the first
        groups.append({"params": stage, "lr": top * 0.1 ** depth})
    return groups


def create_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, epochs: int | None = None,
                     steps: int | None = None) -> dict | None:
    """Lightning's scheduler dict, stepped once per epoch over ``epochs`` (default config.epochs); None: constant.
    With ``steps`` (the phase's optimiser steps), cosine is stepped per batch after a linear warm-up over the first
    tenth of them (fine-tuning: the new rates do not jolt a head that is already at its optimum)."""
    import math

    epochs = epochs or config.epochs
    if config.scheduler == "cosine" and steps:
        warm = max(1, round(0.1 * steps))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, steps - warm))))

        return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "interval": "step"}
    if config.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    elif config.scheduler == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    elif config.scheduler == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
        return {"scheduler": scheduler, "monitor": "val_loss", "interval": "epoch"}
    else:
        return None
    return {"scheduler": scheduler, "interval": "epoch"}
