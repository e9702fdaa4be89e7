"""``ImageClassifier``: the Python API a scikit-learn or Keras user guesses, over the same code as the CLI.

Its parameters are the options of ``cnnkit.config.TrainConfig`` (declared once there); the signature shown by
``help()`` and read by ``sklearn.base.clone`` is generated from that declaration.
"""

from __future__ import annotations

import inspect
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np

from cnnkit._io import write_text
from cnnkit.config import TrainConfig
from cnnkit.errors import DataError, RunError
from cnnkit.evaluation.history import epoch_history
from cnnkit.latent.tsne import run_tsne
from cnnkit.options import default_of
from cnnkit.run import CONFIG_FILE, SPLIT_FILE, WEIGHTS_FILE, RunFolder
from cnnkit.run.lifecycle import refuse_occupied
from cnnkit.run.lock import locked

PARAMETERS = [f.name for f in fields(TrainConfig)]


def _dataframe_to_csv(frame, target: Path) -> Path:
    """A DataFrame's path and label columns as the run's labels.csv, paths made absolute; a label that is a list
    of names (multi-label) is written ``a|b``."""
    import csv
    import io

    columns = [c for c in ("path", "label", "split") if c in frame.columns]
    if "path" not in columns or "label" not in columns:
        raise DataError(f"The DataFrame needs 'path' and 'label' columns; it has {list(frame.columns)}.")
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(columns)
    for row in frame[columns].itertuples(index=False):
        label = "|".join(map(str, row[1])) if isinstance(row[1], (list, tuple, set, frozenset)) else str(row[1])
        writer.writerow([str(Path(row[0]).resolve()), label, *(str(v) for v in row[2:])])
    return write_text(target, text.getvalue())


def _same(value, default) -> bool:
    """Whether a parameter still has its default (a value whose ``==`` is no truth value, an array, never has)."""
    try:
        return value is default or bool(value == default)
    except (TypeError, ValueError):
        return False


class ImageClassifier:
    """Train with ``fit(folder)``, then ``predict``, ``predict_proba``, ``transform``, ``score``, ``evaluate``,
    ``save`` and ``load``.

    Parameters are those of :class:`cnnkit.config.TrainConfig` (``model``, ``epochs``, ``optimizer``, ``lr``, ...).
    Fitted attributes: ``classes_``, ``run_dir_``, ``history_`` (per trained epoch, as Keras' ``History.history``:
    ``{"epoch": [1, 2, ...], "train_loss": [...], "val_loss": [...], "train_acc": [...], "val_acc": [...]}``; a head
    solved by L-BFGS is no epoch: the scores of its penalty grid are in ``result_.phases[i].solver.grid``) and
    ``result_`` (the kept epoch, its validation scores, the time).

    Images can be given as files and folders, PIL images, numpy arrays ((H, W, C) or (N, H, W, C), uint8 or floats in
    [0, 1]) or torch tensors ((C, H, W) or (N, C, H, W), floats in [0, 1]), of any size: each is resized and
    standardised by the run's preprocessing, as files are. (The raw network, ``predictor_.model``, takes standardised
    (N, C, H, W) float tensors at the run's size: ``cnnkit.data.preprocess.standardize``.)
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

    def __repr__(self) -> str:
        """``ImageClassifier(model='tiny_cnn', epochs=3)``: the parameters that differ from their defaults, in the
        signature's order (scikit-learn's ``print_changed_only``), wrapped under the opening parenthesis."""
        defaults = {name: p.default for name, p in inspect.signature(type(self)).parameters.items()}
        changed = [f"{name}={getattr(self, name)!r}" for name, default in defaults.items()
                   if name != "self" and not _same(getattr(self, name), default)]
        opening = f"{type(self).__name__}("
        text = opening + ", ".join(changed) + ")"
        return text if len(text) <= 100 else opening + (",\n" + " " * len(opening)).join(changed) + ")"

    @property
    def config(self) -> TrainConfig:
        return TrainConfig(**self.get_params())

    def fit(self, data, out: str | Path | None = None, *, verbose: bool = True, overwrite: bool = False,
            callbacks: list | None = None) -> ImageClassifier:
        """Train on a class-folder tree, a CSV file (path,label[,split]) or a pandas DataFrame with those columns
        (paths relative to the working folder; kept as ``out/labels.csv``) into the run folder ``out`` (default:
        ``runs/<data>-<model>`` as ``cnnkit train`` names it, the model chosen from the data when none is given;
        ``runs/dataframe-<model>`` for a DataFrame, ``runs/dataframe`` without a model).
        ``verbose``: progress on stderr as the command line shows it. An ``out`` that holds a run is refused unless
        ``overwrite`` (then it is replaced), as on the command line: a second ``fit`` names another ``out``.
        ``callbacks``: Lightning callbacks, called in every epoch-trained phase."""
        from cnnkit.inference import Predictor
        from cnnkit.training.defaults import choose_model
        from cnnkit.training.fit import train

        frame = hasattr(data, "to_csv")
        config = self.config if frame else choose_model(data, self.config)  # named in the folder, as the CLI does
        name = "dataframe" if frame else Path(data).resolve().name
        out = Path(out) if out else Path("runs") / (f"{name}-{config.model}" if config.model else name)
        with locked(out):  # the DataFrame's labels are written into the run only by the run's one writer
            if frame:
                refuse_occupied(RunFolder(out), overwrite)  # train's own refusal, before the labels are written
                data = _dataframe_to_csv(data, out / "labels.csv")
            trained = train(data, out, config, progress=verbose, overwrite=overwrite, callbacks=callbacks)
        self.result_ = trained.record.result
        self.history_ = epoch_history(RunFolder(out).log_dir / "metrics.csv")
        self._use(Predictor.load(out, backend="torch"))
        return self

    def _use(self, predictor) -> None:
        self.predictor_ = predictor
        self.classes_ = list(predictor.classes)
        self.run_dir_ = predictor.run_dir

    def _check_fitted(self) -> None:
        if not hasattr(self, "predictor_"):
            raise RunError("This ImageClassifier is not fitted yet. Call fit(folder) or ImageClassifier.load(run).")

    def predict_proba(self, images, tta: int = 1) -> np.ndarray:
        """Class probabilities, one row per image; ``tta`` > 1 averages that many augmented versions."""
        self._check_fitted()
        return self.predictor_.predict_proba(images, tta=tta)

    def predict(self, images, tta: int = 1) -> list[str]:
        """The class name of each image (multi-label: its classes joined ``a|b``, "" for none, each class decided
        by its threshold chosen on validation)."""
        self._check_fitted()
        return [p.label for p in self.predictor_.predict(images, tta=tta)]

    def transform(self, images) -> np.ndarray:
        """Latent vectors (N, D): the layer before the classifier, as ``cnnkit features`` writes them."""
        self._check_fitted()
        return self.predictor_.transform(images)

    def score(self, images, y) -> float:
        """Mean accuracy on ``images`` against ``y`` (class names or indices), as scikit-learn's classifiers;
        multi-label: the share of images whose whole label set (``a|b``, or a list of names) is right."""
        self._check_fitted()
        predicted = self.predict(images)
        if self.predictor_.multi_label:
            predicted = [frozenset(p.split("|")) - {""} for p in predicted]
            truth = [frozenset(v.split("|") if isinstance(v, str) else v) - {""} for v in y]
        else:
            truth = [self.classes_[v] if isinstance(v, (int, np.integer)) else str(v) for v in y]
        if len(truth) != len(predicted):
            raise ValueError(f"score: {len(predicted)} images but {len(truth)} labels.")
        return float(np.mean([p == t for p, t in zip(predicted, truth)])) if truth else float("nan")

    def similar(self, query: str | Path, k: int = 5, **options):
        """The ``k`` training images nearest to the image file ``query`` in the latent space (``cnnkit similar``):
        a ``Neighbours`` with paths, distances and ``grid_png()``. ``options``: those of ``SearchConfig``."""
        from cnnkit.latent.similar import similar

        self._check_fitted()
        return similar(self.run_dir_, query, k=k, **options)

    def tsne(self, data: str | Path | None = None, **options):
        """A t-SNE map of the latent vectors of the run's images, or of the labelled folder ``data``
        (``cnnkit tsne``): coordinates, labels and ``png``. ``options``: those of ``TsneConfig``."""
        self._check_fitted()
        return run_tsne(self.run_dir_, data, **options)

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

        predictor = Predictor.load(directory, backend="torch")
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
