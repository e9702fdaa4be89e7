"""cnnkit: convolutional image classifiers for scarce labelled data.

Heavy dependencies (torch, Lightning) load lazily, so importing cnnkit is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "ImageClassifier": "cnnkit.classifier",
    "create_model": "cnnkit.models",
    "list_models": "cnnkit.models",
    "summary": "cnnkit.models.summary",
    "Predictor": "cnnkit.inference",
    "list_datasets": "cnnkit.data.builtin",
    "export_dataset": "cnnkit.data.builtin",
}

if TYPE_CHECKING:  # pragma: no cover
    from cnnkit.classifier import ImageClassifier
    from cnnkit.data.builtin import export_dataset, list_datasets
    from cnnkit.inference import Predictor
    from cnnkit.models import create_model, list_models
    from cnnkit.models.summary import summary

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")
