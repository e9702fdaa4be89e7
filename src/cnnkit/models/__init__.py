"""Networks: a registry of builders, each giving a ConvNet (feature extractor plus head)."""

from __future__ import annotations

from cnnkit.errors import ModelError
from cnnkit.models import autoencoder, lenet, simple_cnn, vgg  # noqa: F401  (registers the builders)
from cnnkit.models._registry import get_model_entry, is_registered, list_models, register_model
from cnnkit.models.inputs import FALLBACK_IMAGE_SIZE, ModelDataConfig, data_config, default_image_size
from cnnkit.models.init import init_weights
from cnnkit.models.network import ConvNet, Network
from cnnkit.models.transfer import HEAD_OPTIONS, TransferNet, build_transfer_net

__all__ = ["ConvNet", "ModelDataConfig", "Network", "TransferNet", "create_model", "data_config", "default_image_size",
           "describe_model", "is_autoencoder", "list_models", "model_options", "register_model"]


def create_model(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    image_size: tuple[int, int] | None = None,
    init: str = "default",
    **options,
) -> Network:
    """Build the model ``name`` for inputs of ``in_channels`` x ``image_size``: a registered cnnkit network, or any
    timm architecture as a ``TransferNet`` (timm backbone, new head; random weights, see ``models.pretrained``).

    ``options`` are the builder's own (see ``model_options(name)``); an unknown one is an error, not ignored.
    """
    allowed = model_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ModelError(f"Model {name!r} has no option(s) {unknown}. Options: {', '.join(allowed) or 'none'}.")
    if num_classes < 1:
        raise ModelError(f"Expected num_classes >= 1. Received: num_classes={num_classes}")
    try:
        if is_registered(name):
            entry = get_model_entry(name)
            size = tuple(image_size or entry.default_image_size or FALLBACK_IMAGE_SIZE)
            model = entry.builder(num_classes=num_classes, in_channels=in_channels, image_size=size, **options)
        else:
            model = build_transfer_net(name, num_classes, in_channels, **options)
    except (TypeError, ValueError, RuntimeError) as e:  # an option of the wrong type or range
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "no options"
        raise ModelError(f"Model {name!r} cannot be built with {shown}: {e}") from None
    return init_weights(model, init)


def model_options(name: str) -> dict[str, object]:
    """Options and defaults: a builder's own, or for a timm backbone the head's (dropout, hidden)."""
    return get_model_entry(name).options() if is_registered(name) else dict(HEAD_OPTIONS)


def is_autoencoder(name: str) -> bool:
    """Whether ``name`` is a registered autoencoder (built on the meta device to ask it; timm models never are)."""
    if name not in list_models():
        return False
    import torch

    with torch.device("meta"):
        return create_model(name, 1, 1, default_image_size(name)).reconstructs


def describe_model(name: str) -> str:
    """The first line of a registered model's docstring."""
    return get_model_entry(name).description
