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


def multilabel_out_of_fold(features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """(N, classes) probabilities that each class is present, one logistic regression per class on standardised
    ``features``, each row predicted by models that did not see it; a class present everywhere or nowhere keeps its
    constant."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probabilities = np.zeros(labels.shape, np.float64)
    for train, held in KFold(max(2, min(folds, len(labels))), shuffle=True, random_state=seed).split(features):
        for c in range(labels.shape[1]):
            seen = labels[train, c]
            if seen.min() == seen.max():
                probabilities[held, c] = seen[0]
                continue
            model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
            probabilities[held, c] = model.fit(features[train], seen).predict_proba(features[held])[:, 1]
    return probabilities


def multilabel_issues(probabilities: np.ndarray, labels: np.ndarray) -> list[tuple[int, float, bool]]:
    """Every image as (index, its label set's quality, flagged), the most suspect first: cleanlab's multi-label
    label quality (each class's self-confidence, pooled towards the worst), flagged where its ``find_label_issues``
    says a class is likely wrong."""
    from cleanlab.multilabel_classification.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    sets = [np.nonzero(row)[0].tolist() for row in labels]
    quality = get_label_quality_scores(sets, probabilities)
    flagged = set(find_label_issues(sets, probabilities, n_jobs=1).nonzero()[0].tolist())
    return [(int(i), float(quality[i]), int(i) in flagged) for i in np.argsort(quality, kind="stable")]
