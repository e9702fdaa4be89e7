"""``cnnkit baseline``: fit a classical classifier on a run's train+val images, choosing its settings by stratified
cross-validation there; the test split is scored once, at the end, by the same evaluation as a CNN run."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from cnnkit._io import atomic_write
from cnnkit.baselines.model import method_inputs
from cnnkit.config import BaselineConfig
from cnnkit.data.files import scan_folder
from cnnkit.data.prepare import prepare_training_data, report_counts, split_counts
from cnnkit.errors import DataError, RunError
from cnnkit.models.linear_head import as_softmax
from cnnkit.options import with_options
from cnnkit.run import ModelSpec, RunFolder, RunRecord, TrainedRun, TrainingResult
from cnnkit.run.lock import locked
from cnnkit.run.record import CrossValidation, DataRecord
from cnnkit.run.tasks import KINDS, require_of_data

log = logging.getLogger("cnnkit")

KNN_GRID = {"n_neighbors": [1, 3, 5, 7, 9], "p": [1, 2]}
C_GRID = [0.01, 0.1, 1.0, 10.0]


def search_space(method: str, seed: int):
    """The estimator and its grid: k-NN (k, L1 or L2) on pixels, a softmax on pixels, or a standardised pipeline
    choosing between a softmax and k-NN on hand-crafted features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    linear = LogisticRegression(max_iter=1000, tol=1e-3, random_state=seed)
    if method == "knn":
        return KNeighborsClassifier(), KNN_GRID
    if method == "linear":
        return linear, {"C": C_GRID}
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", linear)])
    return pipeline, [{"clf": [linear], "clf__C": C_GRID},
                      {"clf": [KNeighborsClassifier()], **{f"clf__{k}": v for k, v in KNN_GRID.items()}}]


def cross_validate(method: str, x: np.ndarray, y: np.ndarray, folds: int, seed: int):
    """GridSearchCV with stratified folds on (x, y) only; returns the refitted best estimator and a summary."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    smallest = int(np.bincount(y).min())
    if smallest < 2:
        raise DataError("Cross-validation needs at least 2 train+val images in every class.")
    folds = min(folds, smallest)
    estimator, grid = search_space(method, seed)
    search = GridSearchCV(estimator, grid, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                          scoring="accuracy", n_jobs=1)
    search.fit(x, y)
    best = {k: (type(v).__name__ if hasattr(v, "fit") else v) for k, v in search.best_params_.items()}
    return search.best_estimator_, {"folds": folds, "best": best, "cv_accuracy": float(search.best_score_),
                                    "candidates": len(search.cv_results_["params"]), "samples": int(len(y))}


def export(estimator, num_classes: int) -> tuple[dict, dict[str, np.ndarray]]:
    """Parameters and arrays that rebuild ``estimator`` in ``BaselineModel``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    arrays: dict[str, np.ndarray] = {}
    if isinstance(estimator, Pipeline):
        scaler, estimator = estimator.named_steps["scale"], estimator.named_steps["clf"]
        arrays["mean"], arrays["scale"] = scaler.mean_.astype(np.float32), scaler.scale_.astype(np.float32)
    if isinstance(estimator, LogisticRegression):
        arrays["coef"], arrays["intercept"] = (a.astype(np.float32) for a in as_softmax(estimator, num_classes))
        return {"classifier": "linear", "C": float(estimator.C)}, arrays
    arrays["x"], arrays["y"] = estimator._fit_X.astype(np.float32), estimator._y.astype(np.int64)
    arrays["y"] = estimator.classes_[arrays["y"]].astype(np.int64)
    return {"classifier": "knn", "k": int(estimator.n_neighbors), "p": int(estimator.p)}, arrays


@with_options(BaselineConfig)
def train_baseline(data_dir: str | Path, out_dir: str | Path, config: BaselineConfig | None = None) -> TrainedRun:
    """Fit ``config.method`` into the run folder ``out_dir`` (record, split, model.safetensors). With the same seed
    and fractions as a network run on the same folder, the split is the same. Score it with ``cnnkit.evaluate``."""
    from safetensors.numpy import save_file

    config = config or BaselineConfig()
    run = RunFolder(out_dir)
    if run.exists():
        raise RunError(f"{run.path} already holds a run. Choose another `out`.")
    if scan_folder(data_dir).multi_label:
        require_of_data(KINDS["multi-label"], "baseline", data_dir)
    if config.method == "probe":
        from cnnkit.baselines.probe import fit_probe

        return fit_probe(data_dir, run, config)
    prepared = prepare_training_data(data_dir, image_size=config.image_size, channels=config.channels,
                                     val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                                     seed=config.seed, skip_bad=config.skip_bad, dedupe=config.dedupe,
                                     val_folder=config.val_folder)
    counts = split_counts(prepared.splits, prepared.classes)
    report_counts(counts)
    start = time.perf_counter()
    images = np.concatenate([prepared.splits["train"].images, prepared.splits["val"].images])
    y = np.concatenate([prepared.splits["train"].labels, prepared.splits["val"].labels])
    estimator, cv = cross_validate(config.method, method_inputs(config.method, images), y, config.folds, config.seed)
    params, arrays = export(estimator, len(prepared.classes))
    seconds = time.perf_counter() - start
    log.info("Cross-validation (%d folds on %d train+val images): best %s, accuracy %.4f", cv["folds"],
             cv["samples"], ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in cv["best"].items()), cv["cv_accuracy"])
    manifest = replace(prepared.manifest, root=run.portable_root(prepared.manifest.root))
    record = RunRecord(
        model=ModelSpec(f"baseline-{config.method}", len(prepared.classes), prepared.preprocessing.channels,
                        kind="baseline", method=config.method, params=params),
        classes=tuple(prepared.classes), preprocessing=prepared.preprocessing,
        data=DataRecord(manifest.root, manifest.layout, counts, tuple(prepared.skipped), prepared.dropped or None,
                        tuple(prepared.conflicting)),
        baseline=config, cross_validation=CrossValidation(**cv), status="finished",
        result=TrainingResult(best_epoch=None, best_val_acc=cv["cv_accuracy"], train_seconds=round(seconds, 2)))
    with locked(run.path):
        run.write_split(manifest)
        atomic_write(run.weights_path, lambda tmp: save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()},
                                                             str(tmp)))
        run.write_record(record)
    return TrainedRun(run.path, record)
