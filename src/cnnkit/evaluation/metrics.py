"""Classification metrics: scores from one confusion matrix, ROC curves and AUC, mistakes ranked by loss."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts C[i, j]: images of true class i predicted as class j."""
    import torch
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    if len(y_true) == 0:
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    matrix = multiclass_confusion_matrix(torch.as_tensor(y_pred), torch.as_tensor(y_true), num_classes)
    return matrix.numpy().astype(np.int64)


def row_normalized(matrix: np.ndarray) -> np.ndarray:
    """Percent of each true class (row) predicted as each class; rows without images are 0."""
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(100.0 * matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, balanced accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix.

    Precision and recall of a class with nothing predicted or no images are 0 (scikit-learn's zero_division=0).
    Balanced accuracy and macro F1 average over the classes present in ``y_true``.
    """
    from sklearn.metrics import precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    matrix = confusion_matrix(y_true, y_pred, len(classes))
    correct = np.diag(matrix)
    if len(y_true):
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, y_pred, labels=list(range(len(classes))), zero_division=0)
    else:
        precision = recall = f1 = np.zeros(len(classes))
        support = np.zeros(len(classes), dtype=np.int64)
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


@dataclass(frozen=True)
class RocCurve:
    """One ROC curve: false and true positive rates at each threshold (highest first; the first is +inf)."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float | None  # None when the positives or the negatives are missing

    def point(self, threshold: float, scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
        """(fpr, tpr) of the rule ``score >= threshold``."""
        chosen = scores >= threshold
        return float(chosen[~positive].mean()) if (~positive).any() else 0.0, (
            float(chosen[positive].mean()) if positive.any() else 0.0)


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> RocCurve:
    """ROC of ``scores`` for the boolean labels ``positive`` (torchmetrics; thresholds as scikit-learn's)."""
    import torch
    from torchmetrics.functional.classification import binary_auroc, binary_roc

    positive = np.asarray(positive, dtype=bool)
    if not positive.any() or positive.all():
        return RocCurve(np.zeros(0), np.zeros(0), np.zeros(0), None)
    preds, target = torch.as_tensor(np.asarray(scores, dtype=np.float64)), torch.as_tensor(positive.astype(np.int64))
    fpr, tpr, thresholds = (t.numpy().astype(np.float64) for t in binary_roc(preds, target))
    thresholds[0] = np.inf  # torchmetrics writes 1.0 for the (0, 0) corner; a score of 1.0 must not fall on it
    return RocCurve(fpr, tpr, thresholds, float(binary_auroc(preds, target)))


def roc_curves(y_true: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict[str, RocCurve]:
    """Two classes: one curve for ``classes[1]`` (the positive class). More: one-vs-rest, one curve per class."""
    y_true, probabilities = np.asarray(y_true), np.asarray(probabilities)
    targets = [1] if len(classes) == 2 else range(len(classes))
    return {classes[k]: roc_curve(probabilities[:, k], y_true == k) for k in targets}


def closest_to_corner(curve: RocCurve) -> float:
    """The threshold whose (fpr, tpr) lies closest to (0, 1); on a tie (within 1e-6), the highest such threshold."""
    if curve.auc is None:
        raise ValueError("A ROC curve needs both positive and negative examples.")
    distance = np.hypot(curve.fpr[1:], 1.0 - curve.tpr[1:])  # skip the +inf corner, which predicts nothing
    first_best = int(np.flatnonzero(distance <= distance.min() + 1e-6)[0])
    return float(curve.thresholds[1:][first_best])


def auc_summary(curves: dict[str, RocCurve]) -> dict:
    """``{"auc": binary AUC}`` for two classes, else per-class one-vs-rest AUCs and their mean (macro)."""
    aucs = {name: curve.auc for name, curve in curves.items()}
    if len(curves) == 1:
        return {"auc": next(iter(aucs.values()))}
    defined = [a for a in aucs.values() if a is not None]
    return {"auc": float(np.mean(defined)) if defined else None, "auc_per_class": aucs}


def losses(y_true: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Cross-entropy of each image: -log p(true class)."""
    p_true = np.asarray(probabilities)[np.arange(len(y_true)), np.asarray(y_true, dtype=np.int64)]
    return -np.log(np.clip(p_true, 1e-12, 1.0))


def most_confused(matrix: np.ndarray, classes: list[str], limit: int = 10) -> list[dict]:
    """Off-diagonal cells of the confusion matrix with at least one image, most frequent first."""
    matrix = np.asarray(matrix)
    pairs = [(int(matrix[i, j]), i, j) for i in range(len(classes)) for j in range(len(classes))
             if i != j and matrix[i, j] > 0]
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    return [{"true": classes[i], "predicted": classes[j], "count": n} for n, i, j in pairs[:limit]]


def multilabel_metrics(y_true: np.ndarray, y_pred: np.ndarray, probabilities: np.ndarray, classes: list[str],
                       thresholds: list[float] | None = None) -> dict:
    """Scores of multi-label decisions ``y_pred`` (N, classes) against 0/1 ``y_true``, with scikit-learn.

    ``accuracy`` is the share of images whose whole label set is right (scikit-learn's subset accuracy);
    ``balanced_accuracy`` the mean over classes of (recall + specificity) / 2; ``macro_f1`` the mean F1 of the
    classes present; ``micro_f1`` pools every (image, class) decision; ``samples_f1`` averages each image's F1 (an
    image without labels predicted without labels counts 1); ``hamming_loss`` is the share of wrong (image, class)
    decisions; ``mean_average_precision`` averages the per-class average precision (area under precision-recall),
    which does not depend on the thresholds.
    """
    from sklearn.metrics import average_precision_score, f1_score, hamming_loss, precision_recall_fscore_support

    truth, decided = np.asarray(y_true) > 0.5, np.asarray(y_pred, dtype=bool)
    n, k = truth.shape if truth.ndim == 2 else (0, len(classes))
    if n:
        precision, recall, f1, support = precision_recall_fscore_support(truth, decided, zero_division=0)
    else:
        precision = recall = f1 = np.zeros(k)
        support = np.zeros(k, dtype=np.int64)
    negatives = n - support
    specificity = np.divide(((~decided) & (~truth)).sum(0), negatives, out=np.zeros(k), where=negatives > 0)
    present = support > 0
    ap = [float(average_precision_score(truth[:, i], probabilities[:, i])) if present[i] else None
          for i in range(k)]
    per_class = {c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                     "support": int(support[i]), "average_precision": ap[i],
                     "false_positives": int((decided[:, i] & ~truth[:, i]).sum()),
                     "false_negatives": int((~decided[:, i] & truth[:, i]).sum()),
                     "threshold": 0.5 if thresholds is None else float(thresholds[i])}
                 for i, c in enumerate(classes)}
    both = present & (negatives > 0)
    return {
        "n": int(n), "classes": list(classes), "multi_label": True,
        "accuracy": float((truth == decided).all(1).mean()) if n else 0.0,
        "balanced_accuracy": float(((recall + specificity) / 2)[both].mean()) if both.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "micro_f1": float(f1_score(truth, decided, average="micro", zero_division=0)) if n else 0.0,
        "samples_f1": float(f1_score(truth, decided, average="samples", zero_division=1.0)) if n else 0.0,
        "hamming_loss": float(hamming_loss(truth, decided)) if n else 0.0,
        "mean_average_precision": float(np.mean([a for a in ap if a is not None])) if present.any() else None,
        "labels_per_image": {"true": float(truth.sum(1).mean()) if n else 0.0,
                             "predicted": float(decided.sum(1).mean()) if n else 0.0},
        "per_class": per_class,
    }


def multilabel_roc_curves(y_true: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> dict[str, RocCurve]:
    """One ROC curve per class: its probability against whether the image carries it."""
    return {c: roc_curve(np.asarray(probabilities)[:, k], np.asarray(y_true)[:, k] > 0.5)
            for k, c in enumerate(classes)}


def multilabel_losses(y_true: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Binary cross-entropy of each image, summed over its classes."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1 - 1e-12)
    truth = np.asarray(y_true) > 0.5
    return -np.where(truth, np.log(p), np.log(1 - p)).sum(1)
