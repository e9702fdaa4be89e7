"""Networks: a registry of builders, each giving a ConvNet (feature extractor plus head)."""

from __future__ import annotations

from cnnkit.errors import ModelError
from cnnkit.models import lenet, simple_cnn, vgg  # noqa: F401  (registers the builders)
from cnnkit.models._registry import get_model_entry, list_models, register_model
from cnnkit.models.init import init_weights
from cnnkit.models.network import ConvNet

__all__ = ["ConvNet", "create_model", "default_image_size", "list_models", "model_options", "register_model"]


def create_model(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    image_size: tuple[int, int] | None = None,
    init: str = "default",
    **options,
) -> ConvNet:
    """Build the registered model ``name`` for inputs of ``in_channels`` x ``image_size``.

    ``options`` are the builder's own (see ``model_options(name)``); an unknown one is an error, not ignored.
    """
    entry = get_model_entry(name)
    allowed = entry.options()
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ModelError(f"Model {name!r} has no option(s) {unknown}. Options: {', '.join(allowed) or 'none'}.")
    if num_classes < 1:
        raise ModelError(f"Expected num_classes >= 1. Received: num_classes={num_classes}")
    size = tuple(image_size or entry.default_image_size or (32, 32))
    model = entry.builder(num_classes=num_classes, in_channels=in_channels, image_size=size, **options)
    return init_weights(model, init)


def model_options(name: str) -> dict[str, object]:
    return get_model_entry(name).options()


def default_image_size(name: str) -> tuple[int, int] | None:
    return get_model_entry(name).default_image_size
