"""``ImageClassifier``: the Python API a scikit-learn or Keras user guesses, over the same code as the CLI.

Its parameters are the options of ``cnnkit.config.TrainConfig`` (declared once there); the signature shown by
``help()`` and read by ``sklearn.base.clone`` is generated from that declaration.
"""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np

from cnnkit.config import TrainConfig
from cnnkit.errors import RunError
from cnnkit.options import default_of
from cnnkit.run import CONFIG_FILE, SPLIT_FILE, WEIGHTS_FILE

PARAMETERS = [f.name for f in fields(TrainConfig)]


def free_run_folder(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``... : the first that does not hold a run yet."""
    candidate, n = base, 1
    while (candidate / CONFIG_FILE).exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


class ImageClassifier:
    """Train with ``fit(folder)``, then ``predict``, ``predict_proba``, ``evaluate``, ``save`` and ``load``.

    Parameters are those of :class:`cnnkit.config.TrainConfig` (``model``, ``epochs``, ``optimizer``, ``lr``, ...).
    Fitted attributes: ``classes_``, ``run_dir_``, ``history_`` (the training result: best epoch, losses, time).
    """

    def __init__(self, model: str = TrainConfig.model, **settings):
        unknown = sorted(set(settings) - set(PARAMETERS))
        if unknown:
            raise TypeError(f"ImageClassifier got unknown settings {unknown}; see cnnkit.config.TrainConfig.")
        self.model = model
        for name in PARAMETERS:
            if name != "model":
                setattr(self, name, settings.get(name, default_of(TrainConfig.__dataclass_fields__[name])))

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in PARAMETERS}

    def set_params(self, **params) -> ImageClassifier:
        unknown = sorted(set(params) - set(PARAMETERS))
        if unknown:
            raise ValueError(f"ImageClassifier has no parameter(s) {unknown}.")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    @property
    def config(self) -> TrainConfig:
        return TrainConfig(**self.get_params())

    def fit(self, data: str | Path, out: str | Path | None = None, progress: bool = False) -> ImageClassifier:
        """Train on a class-folder tree into the run folder ``out`` (default: a new ``runs/<data>-<model>[-N]``)."""
        from cnnkit.inference import Predictor
        from cnnkit.training.fit import train

        config = self.config
        out = Path(out) if out else free_run_folder(Path("runs") / f"{Path(data).resolve().name}-{config.model}")
        trained = train(data, out, config, progress=progress)
        self.history_ = trained.record.result
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
        """Copy what prediction needs (record, split, weights) into ``directory``."""
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
        record = RunFolder(directory).read_record()
        classifier = cls(**record.training.to_dict()) if record.training else cls()
        classifier._use(predictor)
        return classifier


def _signature() -> inspect.Signature:
    """``__init__(self, model='simple_cnn', *, image_size=None, ...)`` from TrainConfig's fields."""
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                  inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=TrainConfig.model,
                                    annotation="str")]
    parameters += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default_of(f),
                                     annotation=f.type) for f in fields(TrainConfig) if f.name != "model"]
    return inspect.Signature(parameters)


ImageClassifier.__init__.__signature__ = _signature()
