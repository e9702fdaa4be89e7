"""Choose a two-class decision threshold on the run's validation split (never on the images it is scored on)."""

from __future__ import annotations

from pathlib import Path

from cnnkit.errors import ConfigError, RunError
from cnnkit.evaluation import metrics as M
from cnnkit.inference import Predictor
from cnnkit.run import RunFolder
from cnnkit.run.lock import locked
from cnnkit.run.tasks import require

CHOSEN = "chosen on the validation split: closest to (0, 1) on its ROC"
SET_BY_USER = "set by the user"


def choose_threshold(run_dir: str | Path, predictor: Predictor | None = None) -> float:
    """The threshold closest to (0, 1) on the ROC of the run's validation split."""
    run = RunFolder(run_dir)
    require(run.read_record().kind, "threshold", run.path)
    predictor = predictor or Predictor.load(run.path, backend="torch")
    if len(predictor.classes) != 2:
        raise ConfigError(f"Choosing a threshold needs two classes; this model has {len(predictor.classes)}.")
    val = run.load_split("val", predictor.classes, predictor.preprocessing)
    curve = M.roc_curve(predictor.predict_arrays(val.images)[:, 1], val.labels == 1)
    if curve.auc is None:
        raise RunError(f"The validation split of {run.path} lacks one of the two classes; no ROC to choose from.")
    return M.closest_to_corner(curve)


def store_threshold(run_dir: str | Path, threshold: float | None = None, choose: bool = False) -> float:
    """Store a decision threshold in the run (the given one, or with ``choose`` the one chosen on the validation
    split); ``predict`` and ``evaluate`` use it from then on. Returns it."""
    if (threshold is None) == (not choose):
        raise ConfigError("Pass either `threshold` or `choose`.")
    run = RunFolder(run_dir)
    record = run.read_record()
    require(record.kind, "threshold", run.path)
    value = choose_threshold(run.path) if choose else threshold
    with locked(run.path):
        run.store_decision(value, CHOSEN if choose else SET_BY_USER)
    return value
