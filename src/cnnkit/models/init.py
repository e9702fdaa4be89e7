"""Weight initialisation schemes for convolutional and dense layers.

The names are declared as the ``init`` option in ``cnnkit.config``; a test checks that this table has the same ones.
"""

from __future__ import annotations

from torch import nn

from cnnkit.errors import check_choice


def _kaiming(weight) -> None:
    nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")


INITIALIZERS = {"default": None, "kaiming": _kaiming, "xavier": nn.init.xavier_uniform_}


def init_weights(model: nn.Module, scheme: str = "default") -> nn.Module:
    """'kaiming' (He et al., for ReLU nets), 'xavier' (Glorot, for tanh/sigmoid) or 'default' (PyTorch's own)."""
    check_choice("init", scheme, tuple(INITIALIZERS))
    initialise = INITIALIZERS[scheme]
    if initialise is None:
        return model
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            initialise(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model
