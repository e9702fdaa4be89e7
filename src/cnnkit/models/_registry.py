"""Model registry: each architecture is a builder function registered under its name (as timm does)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from cnnkit.errors import ModelError
from cnnkit.models.transfer import is_timm_model


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable
    default_image_size: tuple[int, int] | None
    description: str

    def options(self) -> dict[str, object]:
        """Builder keyword options beyond the input and class count, with their defaults."""
        fixed = {"num_classes", "in_channels", "image_size"}
        return {n: p.default for n, p in inspect.signature(self.builder).parameters.items() if n not in fixed}


_MODELS: dict[str, ModelEntry] = {}


def register_model(default_image_size: tuple[int, int] | None = None) -> Callable[[Callable], Callable]:
    """Register ``builder(num_classes, in_channels, image_size, **options)`` under its function name."""

    def wrap(builder: Callable) -> Callable:
        paragraph = " ".join((builder.__doc__ or "").strip().split("\n\n")[0].split())
        first = paragraph.split(": ")[0] if len(paragraph) > 110 else paragraph  # one line in `cnnkit models`
        _MODELS[builder.__name__] = ModelEntry(builder.__name__, builder, default_image_size,
                                               first if first.endswith(".") else first + ".")
        return builder

    return wrap


def list_models() -> list[str]:
    return sorted(_MODELS)


def get_model_entry(name: str) -> ModelEntry:
    if name not in _MODELS:
        raise ModelError(f"Unknown model {name!r}. Available: {', '.join(list_models())}, or any timm architecture "
                         "(`python -c \"import timm; print(timm.list_models())\"`).")
    return _MODELS[name]


def is_registered(name: str) -> bool:
    """Whether ``name`` is one of cnnkit's own builders (True) or a timm architecture (False); ModelError naming the
    choices when it is neither."""
    if name in _MODELS:
        return True
    if is_timm_model(name):
        return False
    get_model_entry(name)  # raises the unknown-model error
    return False
