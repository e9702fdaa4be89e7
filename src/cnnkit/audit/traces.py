"""Hidden traces: metadata (size, aspect ratio, colour mode, file format, JPEG quality, file size, brightness) that
predicts the class. A classifier that sees only metadata is cross-validated against chance; when it does much
better, a model can learn the trace instead of the object."""

from __future__ import annotations

import numpy as np

from cnnkit.audit.inventory import Item

NUMERIC = ("width", "height", "aspect", "bytes", "brightness", "contrast", "jpeg_quality")
CATEGORICAL = ("mode", "format")
MARGIN = 0.25  # balanced accuracy above chance that flags a trace


def _table(items: list[Item]) -> tuple[np.ndarray, list[str]]:
    columns = list(NUMERIC)
    rows = [[item.meta.get(k) if item.meta.get(k) is not None else -1 for k in NUMERIC] for item in items]
    for key in CATEGORICAL:
        values = sorted({item.meta.get(key) for item in items})
        if len(values) > 1:
            columns += [f"{key}={v}" for v in values]
            for row, item in zip(rows, items):
                row += [float(item.meta.get(key) == v) for v in values]
    return np.asarray(rows, dtype=np.float64), columns


def _cv_balanced(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> float:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    folds = max(2, min(folds, int(np.bincount(y).min())))
    model = RandomForestClassifier(n_estimators=50, min_samples_leaf=2, random_state=seed, n_jobs=1)
    return float(cross_val_score(model, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                                 scoring="balanced_accuracy").mean())


def per_class(items: list[Item], classes: list[str]) -> dict:
    """Each class's metadata: medians of the numbers, counts of modes and formats."""
    out = {}
    for c in classes:
        members = [i.meta for i in items if i.label == c]
        out[c] = {"images": len(members),
                  **{f"median_{k}": (float(np.median([m[k] for m in members if m.get(k) is not None]))
                                     if any(m.get(k) is not None for m in members) else None) for k in NUMERIC},
                  **{key: {str(v): sum(1 for m in members if m.get(key) == v)
                           for v in sorted({m.get(key) for m in members}, key=str)} for key in CATEGORICAL}}
    return out


def metadata_trace(items: list[Item], classes: list[str], folds: int = 5, seed: int = 0) -> dict:
    """The cross-validated balanced accuracy of a random forest on metadata alone against chance (1 / classes),
    the single features that predict best, and whether it is a trace (at least ``MARGIN`` above chance)."""
    good = [i for i in items if not i.error]
    y = np.array([classes.index(i.label) for i in good])
    if len(set(y)) < 2 or np.bincount(y).min() < 2:
        return {"flagged": False, "reason": "too few images per class to cross-validate"}
    x, columns = _table(good)
    chance = 1.0 / len(set(y))
    score = _cv_balanced(x, y, folds, seed)
    flagged = score >= chance + MARGIN
    singles = sorted(((_cv_balanced(x[:, [k]], y, folds, seed), name) for k, name in enumerate(columns)
                      if np.ptp(x[:, k]) > 0), reverse=True)[:3] if flagged else []  # what gives it away
    return {"balanced_accuracy": score, "chance": chance, "flagged": flagged,
            "margin": MARGIN, "features": columns,
            "best_single_features": [{"feature": name, "balanced_accuracy": s} for s, name in singles]}
