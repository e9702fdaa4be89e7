"""Classification metrics, all derived from one confusion matrix computed with torchmetrics."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts C[i, j]: images of true class i predicted as class j."""
    import torch
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    if len(y_true) == 0:
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    matrix = multiclass_confusion_matrix(torch.as_tensor(y_pred), torch.as_tensor(y_true), num_classes)
    return matrix.numpy().astype(np.int64)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)), where=denominator > 0)


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, balanced accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix.

    Precision and recall of a class with nothing predicted or no images are 0 (scikit-learn's zero_division=0).
    Balanced accuracy and macro F1 average over the classes present in ``y_true``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(probabilities).argmax(axis=1) if len(y_true) else np.zeros(0, np.int64)
    matrix = confusion_matrix(y_true, y_pred, len(classes))
    correct, support, predicted = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    precision, recall = _ratio(correct, predicted), _ratio(correct, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    present = support > 0
    n = int(len(y_true))
    return {
        "n": n,
        "classes": list(classes),
        "accuracy": float(correct.sum() / n) if n else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                "support": int(support[i])}
            for i, c in enumerate(classes)
        },
        "confusion_matrix": matrix.tolist(),
    }
