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


def label_issues(probabilities: np.ndarray, labels: np.ndarray) -> list[tuple[int, float]]:
    """(index, probability of its own label) of the images confident learning flags, most suspect first."""
    from cleanlab.filter import find_label_issues

    ranked = find_label_issues(labels, probabilities, return_indices_ranked_by="self_confidence")
    return [(int(i), float(probabilities[i, labels[i]])) for i in ranked]
