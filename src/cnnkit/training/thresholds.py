"""A multi-label run's decision threshold per class, chosen on its validation split for the best F1."""

from __future__ import annotations

import numpy as np

from cnnkit.run.results import Thresholds

SOURCE = "chosen on the validation split: the best F1 per class (0.5 where a class has no validation image)"


def best_f1_threshold(scores: np.ndarray, positive: np.ndarray) -> float:
    """The threshold (rule ``score >= t``) with the highest F1 on these scores; 0.5 when there is no positive.

    Candidates lie midway between neighbouring distinct scores, so a small shift of a score does not flip the
    decisions it was chosen on; among equal F1s, the candidate nearest 0.5 (the untuned rule) wins."""
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    if not positive.any():
        return 0.5
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], positive[order]
    true_positives = np.cumsum(hits)
    cut = np.flatnonzero(np.append(ranked[1:] < ranked[:-1], True))  # the last index of each run of equal scores
    f1 = 2 * true_positives[cut] / (cut + 1 + positive.sum())
    below = np.append(ranked[cut[:-1] + 1], 0.0)  # the next lower score (0 past the lowest)
    candidates = (ranked[cut] + below) / 2
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def label_thresholds(probabilities: np.ndarray, labels: np.ndarray, classes: list[str]) -> Thresholds:
    """The record's ``label_thresholds``: the best-F1 threshold of each class on (N, classes) probabilities."""
    per_class = {c: round(best_f1_threshold(probabilities[:, k], labels[:, k] > 0.5), 6)
                 for k, c in enumerate(classes)}
    return Thresholds(per_class, SOURCE)
