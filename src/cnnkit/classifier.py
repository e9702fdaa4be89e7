"""``ImageClassifier``: the Python API a scikit-learn or Keras user guesses, over the same code as the CLI."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np

from cnnkit.config import TrainConfig
from cnnkit.errors import RunError
from cnnkit.run import CONFIG_FILE, SPLIT_FILE, WEIGHTS_FILE


class ImageClassifier:
    """Train with ``fit(folder)``, then ``predict``, ``predict_proba``, ``evaluate``, ``save`` and ``load``.

    Keyword arguments are the fields of :class:`cnnkit.config.TrainConfig` (``epochs``, ``optimizer``, ``lr``, ...).
    Fitted attributes: ``classes_``, ``run_dir_``, ``history_`` (the TrainResult).
    """

    def __init__(self, model: str = "simple_cnn", **settings):
        unknown = sorted(set(settings) - {f.name for f in fields(TrainConfig)})
        if unknown:
            raise TypeError(f"ImageClassifier got unknown settings {unknown}; see cnnkit.config.TrainConfig.")
        self.model = model
        self.settings = settings

    @property
    def config(self) -> TrainConfig:
        return TrainConfig(model=self.model, **self.settings)

    def fit(self, data: str | Path, out: str | Path | None = None, progress: bool = False) -> ImageClassifier:
        """Train on a class-folder tree; the run folder ``out`` (default ``runs/<data>-<model>``) keeps everything."""
        from cnnkit.inference import Predictor
        from cnnkit.training.fit import train

        out = Path(out or Path("runs") / f"{Path(data).resolve().name}-{self.model}")
        self.history_ = train(data, out, self.config, progress=progress)
        self._use(Predictor.load(out))
        return self

    def _use(self, predictor) -> None:
        self.predictor_ = predictor
        self.classes_ = list(predictor.classes)
        self.run_dir_ = predictor.run_dir

    def _check_fitted(self) -> None:
        if not hasattr(self, "predictor_"):
            raise RunError("This ImageClassifier is not fitted yet. Call fit(folder) or ImageClassifier.load(run).")

    def predict_proba(self, paths: Sequence[str | Path], tta: int = 1) -> np.ndarray:
        """Class probabilities, one row per image; ``tta`` > 1 averages that many augmented versions."""
        self._check_fitted()
        return self.predictor_.predict_proba(paths, tta=tta)

    def predict(self, paths: Sequence[str | Path], tta: int = 1) -> list[str]:
        self._check_fitted()
        return [p.label for p in self.predictor_.predict(paths, tta=tta)]

    def evaluate(self, data: str | Path | None = None, tta: int = 1) -> dict:
        """Metrics on the run's held-out test split, or on another labelled folder; writes the report too."""
        from cnnkit.evaluation.evaluate import evaluate_run

        self._check_fitted()
        return evaluate_run(self.run_dir_, data=data, predictor=self.predictor_, tta=tta).metrics

    def save(self, directory: str | Path) -> Path:
        """Copy what prediction needs (config, split, weights) into ``directory``."""
        self._check_fitted()
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        for name in (CONFIG_FILE, SPLIT_FILE, WEIGHTS_FILE):
            if Path(self.run_dir_, name).resolve() != (target / name).resolve():
                shutil.copyfile(Path(self.run_dir_) / name, target / name)
        return target

    @classmethod
    def load(cls, directory: str | Path) -> ImageClassifier:
        from cnnkit.inference import Predictor
        from cnnkit.run import RunFolder

        predictor = Predictor.load(directory)
        training = RunFolder(directory).read_config().get("training", {})
        settings = {k: v for k, v in TrainConfig.from_dict(training).to_dict().items() if k != "model"}
        classifier = cls(training.get("model", "simple_cnn"), **settings)
        classifier._use(predictor)
        return classifier
