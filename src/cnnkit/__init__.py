"""cnnkit: convolutional image classifiers for scarce labelled data.

Heavy dependencies (torch, Lightning) load lazily, so importing cnnkit is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnkit._version import __version__

_LAZY = {
    "ImageClassifier": "cnnkit.classifier",
    "TrainConfig": "cnnkit.config",
    "BaselineConfig": "cnnkit.config",
    "EvaluateConfig": "cnnkit.config",
    "ScanConfig": "cnnkit.config",
    "SearchConfig": "cnnkit.config",
    "train": "cnnkit.training.fit",
    "resume": "cnnkit.training.fit",
    "lr_find": "cnnkit.training.lr_find",
    "LrFindConfig": "cnnkit.config",
    "auto_train": "cnnkit.recipes",
    "train_baseline": "cnnkit.baselines.fit",
    "evaluate": ("cnnkit.evaluation.evaluate", "evaluate_run"),
    "store_threshold": "cnnkit.evaluation.threshold",
    "choose_threshold": "cnnkit.evaluation.threshold",
    "compare_runs": "cnnkit.evaluation.compare",
    "similar": "cnnkit.latent.similar",
    "tsne": ("cnnkit.latent.tsne", "run_tsne"),
    "scan_photo": "cnnkit.scan.photo",
    "train_points": "cnnkit.training.points",
    "PointsConfig": "cnnkit.config",
    "make_patches": "cnnkit.patches",
    "export_run": "cnnkit.export.run",  # not "export": that name is the subpackage
    "ExportConfig": "cnnkit.config",
    "RunFolder": "cnnkit.run",
    "RunRecord": "cnnkit.run",
    "create_model": "cnnkit.models",
    "list_models": "cnnkit.models",
    "summary": "cnnkit.models.summary",
    "Predictor": "cnnkit.inference",
    "list_datasets": "cnnkit.data.builtin",
    "export_dataset": "cnnkit.data.builtin",
}

from cnnkit.errors import CnnkitError, ConfigError, DataError, ModelError, RunError  # noqa: E402  (light)

if TYPE_CHECKING:  # pragma: no cover
    from cnnkit.classifier import ImageClassifier
    from cnnkit.config import (BaselineConfig, EvaluateConfig, ExportConfig, LrFindConfig, ScanConfig, SearchConfig,
                               TrainConfig)
    from cnnkit.evaluation.evaluate import evaluate_run as evaluate
    from cnnkit.export.run import export_run
    from cnnkit.data.builtin import export_dataset, list_datasets
    from cnnkit.inference import Predictor
    from cnnkit.models import create_model, list_models
    from cnnkit.models.summary import summary
    from cnnkit.training.lr_find import lr_find

__all__ = ["__version__", "CnnkitError", "ConfigError", "DataError", "ModelError", "RunError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name] if isinstance(_LAZY[name], tuple) else (_LAZY[name], name)
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")
