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


def create_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> dict | None:
    """Lightning's scheduler dict, stepped once per epoch; None for a constant learning rate."""
    if config.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    elif config.scheduler == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, config.epochs // 3), gamma=0.1)
    elif config.scheduler == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
        return {"scheduler": scheduler, "monitor": "val_loss", "interval": "epoch"}
    else:
        return None
    return {"scheduler": scheduler, "interval": "epoch"}
