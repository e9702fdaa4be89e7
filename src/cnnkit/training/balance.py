"""Class imbalance: oversample rare classes, or weight the loss by class."""

from __future__ import annotations

import numpy as np


def class_weights(counts: list[int]) -> list[float]:
    """scikit-learn's "balanced" weights, n / (classes * n_c), from ``compute_class_weight``; a class without
    images gets 0 (scikit-learn refuses a class absent from the labels)."""
    from sklearn.utils.class_weight import compute_class_weight

    counts = np.asarray(counts, dtype=np.int64)
    present = np.flatnonzero(counts > 0)
    weights = np.zeros(len(counts))
    if len(present):
        labels = np.repeat(np.arange(len(counts)), counts)
        weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return weights.tolist()


def balance_record(mode: str, train_counts: dict[str, int]) -> dict:
    """What ``--balance`` does to this training split, written into the run's config."""
    if mode == "weights":
        return {"mode": mode, "class_weights": dict(zip(train_counts, class_weights(list(train_counts.values()))))}
    if mode == "oversample":
        n, k = sum(train_counts.values()), sum(1 for v in train_counts.values() if v)
        return {"mode": mode, "draws_per_class_per_epoch": {c: round(n / k, 1) if v else 0
                                                           for c, v in train_counts.items()}}
    return {"mode": "none"}


def oversampler(labels: np.ndarray, num_classes: int, seed: int):
    """A sampler drawing len(labels) indices per epoch with replacement, each class equally likely."""
    import torch
    from torch.utils.data import WeightedRandomSampler

    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = 1.0 / counts[labels]
    return WeightedRandomSampler(torch.as_tensor(weights), num_samples=len(labels), replacement=True,
                                 generator=torch.Generator().manual_seed(seed))
