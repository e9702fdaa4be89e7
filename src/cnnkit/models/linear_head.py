"""A linear head on frozen features, fitted to the optimum: multinomial logistic regression with an L2 penalty on
standardised features (scikit-learn's ``StandardScaler`` then ``LogisticRegression``, L-BFGS, warm-started along the
grid; the scaling is folded into the weights), its strength chosen by stratified cross-validation on train+val
(``choose_by_cv``, as the linear probe chooses it), and stored as the softmax classifier a network's head
computes.

Standardising makes the problem well conditioned: on 1,528 digit images' EfficientNet-Lite0 features the
cross-validation takes 19 s instead of 86 s and the final fit 1 s instead of 20 (benchmarks/flip_features.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

C_GRID = tuple(float(c) for c in np.logspace(-4, 2, 13))  # from strong to weak regularisation
PATIENCE = 3  # the cross-validation stops along the grid after this many C without a better accuracy


@dataclass(frozen=True)
class LinearFit:
    weight: np.ndarray  # (classes, features): softmax(x @ weight.T + bias) are the class probabilities
    bias: np.ndarray  # (classes,)
    C: float
    iterations: int
    converged: bool

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64) @ self.weight.T + self.bias
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def as_softmax(estimator, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's coefficients as a softmax over every class (a class absent from training is never predicted;
    two classes: sigmoid(w.x + b) is the softmax of (0, w.x + b))."""
    coef, intercept = estimator.coef_, estimator.intercept_
    if coef.shape[0] == 1:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, intercept[0]])
    weight = np.zeros((num_classes, coef.shape[1]))
    bias = np.full(num_classes, -1e9)
    weight[estimator.classes_], bias[estimator.classes_] = coef, intercept
    return weight, bias


def standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's mean and standard deviation (1 where a feature is constant), as ``StandardScaler``."""
    x = np.asarray(x, dtype=np.float64)
    scale = x.std(axis=0)
    return x.mean(axis=0), np.where(scale > 0, scale, 1.0)


def fit_softmax(x: np.ndarray, y: np.ndarray, num_classes: int, C: float, class_weights: list[float] | None = None,
                estimator=None, max_iter: int = 2000, tol: float = 1e-6):
    """The regularised softmax regression's optimum for one C on standardised ``x`` (``estimator`` given:
    warm-started from it, on the same ``x``), returned in the raw features' terms; ``tol`` on the gradient: the kept
    head is fitted tightly, the cross-validation's fits to scikit-learn's default."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    weights = dict(enumerate(class_weights)) if class_weights else None
    if estimator is None:
        estimator = LogisticRegression(C=C, max_iter=max_iter, tol=tol, class_weight=weights, warm_start=True)
        estimator.scaling_ = standardisation(x)
    estimator.set_params(C=C)
    mean, scale = estimator.scaling_
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit((np.asarray(x, dtype=np.float64) - mean) / scale, np.asarray(y))
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    weight, bias = as_softmax(estimator, num_classes)
    weight = weight / scale
    bias = bias - weight @ mean
    return LinearFit(weight, bias, C, int(np.max(estimator.n_iter_)), converged), estimator


def log_loss(fit: LinearFit, x: np.ndarray, y: np.ndarray, class_weights: list[float] | None = None) -> float:
    p = fit.probabilities(x)[np.arange(len(y)), np.asarray(y)]
    weights = np.asarray(class_weights, dtype=np.float64)[np.asarray(y)] if class_weights else np.ones(len(y))
    return float((weights * -np.log(np.maximum(p, 1e-15))).sum() / weights.sum())


def choose_by_cv(x: np.ndarray, y: np.ndarray, num_classes: int, folds: int = 5, seed: int = 0,
                 class_weights: list[float] | None = None, grid: tuple[float, ...] = C_GRID,
                 patience: int = PATIENCE) -> tuple[float, list[dict]]:
    """The C of ``grid`` with the best mean accuracy over stratified folds of (x, y), each fold standardised on its
    own training part; among equal accuracies the lowest held-out log loss, then the stronger penalty. The grid is
    walked from strong to weak regularisation and left only after ``patience`` values in a row worse than the best
    (``walked_far_enough``: a plateau is not a maximum; the weak end is the slow one). Returns C and every tried C's
    mean accuracy and log loss."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    folds = max(2, min(folds, int(np.bincount(y, minlength=num_classes)[np.unique(y)].min())))
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y))
    estimators: list = [None] * folds
    scores: list[dict] = []
    for C in grid:
        accuracy, loss = np.zeros(folds), np.zeros(folds)
        for k, (train, held) in enumerate(splits):
            fit, estimators[k] = fit_softmax(x[train], y[train], num_classes, C, class_weights, estimators[k],
                                             tol=1e-4)
            accuracy[k] = float((fit.probabilities(x[held]).argmax(1) == y[held]).mean())
            loss[k] = log_loss(fit, x[held], y[held], class_weights)
        scores.append({"C": C, "cv_acc": float(accuracy.mean()), "cv_loss": float(loss.mean()), "folds": folds})
        if walked_far_enough(scores, patience):
            break
    return scores[best_score(scores)]["C"], scores


def best_score(scores: list[dict]) -> int:
    """The index of the best of the scores so far: the highest accuracy, then the lowest loss, then the first (the
    stronger penalty)."""
    return min(range(len(scores)), key=lambda i: (-scores[i]["cv_acc"], scores[i]["cv_loss"], i))


def walked_far_enough(scores: list[dict], patience: int) -> bool:
    """Whether the last ``patience`` values are all worse than the best so far in accuracy: values that equal it (a
    plateau) keep the walk going, since a better one may follow."""
    best = max(s["cv_acc"] for s in scores)
    tail = scores[-patience:]
    return len(scores) > patience and all(s["cv_acc"] < best for s in tail)


MIRROR_TOLERANCE = 0.05  # accuracy a head may lose on mirror images before flips count as changing the class


def flips_keep_labels(x: np.ndarray, mirrored: np.ndarray, y: np.ndarray, num_classes: int, C: float,
                      class_weights: list[float] | None = None) -> bool:
    """Whether a mirror image keeps its class: a head fitted on the plain features classifies the mirror images'
    features about as well (within ``MIRROR_TOLERANCE``) as the plain ones. Photos of ants do; handwritten digits do
    not (a mirrored 2 is no 2), and there averaging with the mirror image is never kept, whatever the
    cross-validation of the averaged features says."""
    fit, _ = fit_softmax(x, y, num_classes, C, class_weights)
    plain = float((fit.probabilities(x).argmax(1) == y).mean())
    flipped = float((fit.probabilities(mirrored).argmax(1) == y).mean())
    return flipped >= plain - MIRROR_TOLERANCE
