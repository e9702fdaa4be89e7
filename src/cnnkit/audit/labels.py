"""Suspected label errors: images whose out-of-fold probability for their own label is low, by confident learning
(cleanlab) on probabilities cross-validated from frozen features."""

from __future__ import annotations

import numpy as np


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """(N, classes) probabilities of a logistic regression on standardised ``features``, each row predicted by a
    model that did not see it (stratified folds; fewer when a class is small)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    smallest = int(np.bincount(labels).min())
    folds = max(2, min(folds, smallest))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    return cross_val_predict(model, features, labels, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                             method="predict_proba")


def label_issues(probabilities: np.ndarray, labels: np.ndarray) -> list[tuple[int, float, bool]]:
    """Every image as (index, probability of its own label, flagged by confident learning), the most suspect first:
    ranked by cleanlab's label quality (self-confidence); ``flagged`` where cleanlab's ``find_label_issues`` says
    the label is likely wrong."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    quality = get_label_quality_scores(labels, probabilities, method="self_confidence")
    flagged = set(find_label_issues(labels, probabilities, n_jobs=1).nonzero()[0].tolist())  # no process pool
    return [(int(i), float(probabilities[i, labels[i]]), int(i) in flagged) for i in np.argsort(quality, kind="stable")]
