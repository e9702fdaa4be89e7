"""Weight initialisation schemes for convolutional and dense layers."""

from __future__ import annotations

from torch import nn

from cnnkit.errors import check_choice

INIT_SCHEMES = ("default", "kaiming", "xavier")


def init_weights(model: nn.Module, scheme: str = "default") -> nn.Module:
    """'kaiming' (He et al., for ReLU nets), 'xavier' (Glorot, for tanh/sigmoid) or 'default' (PyTorch's own)."""
    check_choice("init", scheme, INIT_SCHEMES)
    if scheme == "default":
        return model
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            if scheme == "kaiming":
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model
