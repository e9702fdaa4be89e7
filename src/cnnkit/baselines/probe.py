"""The linear probe: a pretrained backbone's frozen features (from the feature cache) classified by a logistic
regression whose strength is chosen by stratified cross-validation on train+val, the same split as ``train``. The
reference a transfer run must match; stored as a network run (the backbone with the probe as its head), so predict,
evaluate, compare, the latent space and scanning read it like any run."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from cnnkit.config import BaselineConfig
from cnnkit.data.prepare import prepare_training_data, report_counts, split_counts
from cnnkit.errors import DataError
from cnnkit.run import ModelSpec, RunFolder, RunRecord, TrainedRun, TrainingResult
from cnnkit.run.lock import locked
from cnnkit.run.record import CrossValidation, DataRecord

log = logging.getLogger("cnnkit")


def _backbone_data(data_dir, config: BaselineConfig):
    from cnnkit.models import data_config

    data = data_config(config.backbone, pretrained=True, image_size=config.image_size)
    return prepare_training_data(
        data_dir, image_size=data.image_size, channels=data.channels, crop_pct=data.crop_pct,
        interpolation=data.interpolation, normalization=data.normalization, val_fraction=config.val_fraction,
        test_fraction=config.test_fraction, seed=config.seed, skip_bad=config.skip_bad, dedupe=config.dedupe,
        val_folder=config.val_folder)


def _cross_validate(x: np.ndarray, y: np.ndarray, num_classes: int, folds: int, seed: int):
    """C by stratified cross-validation on train+val (standardised features, scikit-learn's LogisticRegression), then
    the fit on all of train+val at that C: the same solver and choice as a transfer run's head."""
    from cnnkit.models.linear_head import choose_by_cv, fit_softmax

    folds = min(folds, int(np.bincount(y).min()))
    if folds < 2:
        raise DataError("Cross-validation needs at least 2 train+val images in every class.")
    C, scores = choose_by_cv(x, y, num_classes, folds=folds, seed=seed)
    fit, _ = fit_softmax(x, y, num_classes, C)
    return fit, {"folds": folds, "best": {"C": C}, "cv_accuracy": max(s["cv_acc"] for s in scores),
                 "candidates": len(scores), "samples": int(len(y))}


def fit_probe(data_dir: str | Path, run: RunFolder, config: BaselineConfig) -> TrainedRun:
    import torch

    from cnnkit.feature_cache import cached_features
    from cnnkit.models import create_model
    from cnnkit.models.pretrained import load_pretrained
    from cnnkit.weights import save_weights

    prepared = _backbone_data(data_dir, config)
    counts = split_counts(prepared.splits, prepared.classes)
    report_counts(counts)
    classes = prepared.classes
    model = create_model(config.backbone, len(classes), 3, prepared.preprocessing.image_size)
    source = load_pretrained(model, config.backbone)["source"]
    model.set_trainable_stages(0)
    start = time.perf_counter()
    parts = [cached_features(model, prepared.splits[s].images, prepared.preprocessing)[0][:, 0].numpy()
             for s in ("train", "val")]
    y = np.concatenate([prepared.splits["train"].labels, prepared.splits["val"].labels])
    fit, cv = _cross_validate(np.concatenate(parts), y, len(classes), config.folds, config.seed)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(fit.weight))
        model.classifier.bias.copy_(torch.from_numpy(np.maximum(fit.bias, -1e4)))
    seconds = time.perf_counter() - start
    log.info("Probe: C=%g by %d-fold cross-validation on %d train+val images (accuracy %.4f), %.1f s", cv["best"]["C"],
             cv["folds"], cv["samples"], cv["cv_accuracy"], seconds)
    manifest = replace(prepared.manifest, root=run.portable_root(prepared.manifest.root))
    record = RunRecord(
        model=ModelSpec(config.backbone, len(classes), 3, params={"probe": "logistic regression on frozen features",
                                                                  "C": cv["best"]["C"]}),
        classes=tuple(classes), preprocessing=prepared.preprocessing,
        data=DataRecord(manifest.root, manifest.layout, counts, tuple(prepared.skipped), prepared.dropped or None,
                        tuple(prepared.conflicting)),
        baseline=config,
        cross_validation=CrossValidation(**cv), status="finished", pretrained_source=source,
        result=TrainingResult(best_epoch=None, best_val_acc=cv["cv_accuracy"], train_seconds=round(seconds, 2)))
    with locked(run.path):
        run.write_split(manifest)
        save_weights(model, run.weights_path)
        run.write_record(record)
    return TrainedRun(run.path, record)
