"""Optimisers and learning-rate schedules by name."""

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
    """Trainable parameters only: the backbone's (if any) at ``backbone_lr`` (default: lr), the rest at lr."""
    head, body = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (body if name.startswith("backbone.") else head).append(p)
    groups = [{"params": head, "lr": config.lr}]
    if body:
        groups.append({"params": body, "lr": backbone_lr or config.lr})
    return groups


def create_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, epochs: int | None = None) -> dict | None:
    """Lightning's scheduler dict, stepped once per epoch over ``epochs`` (default config.epochs); None: constant."""
    epochs = epochs or config.epochs
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
