"""Hidden traces: file metadata (size, aspect ratio, colour mode, file format, JPEG quality) that predicts the class.
A classifier that sees only that metadata is cross-validated against chance; when it does much better, a model can
learn the trace instead of the object. Brightness, contrast and file size follow the content too (a defect map
with more failures is brighter), so they are measured and shown, but do not raise the warning."""

from __future__ import annotations

import numpy as np

from cnnkit.audit.inventory import Item

FILE = ("width", "height", "aspect", "jpeg_quality")
CONTENT = ("bytes", "brightness", "contrast")
NUMERIC = FILE + CONTENT
CATEGORICAL = ("mode", "format")
MARGIN = 0.25  # balanced accuracy above chance that flags a trace


def _table(items: list[Item], numeric=FILE, categorical=CATEGORICAL) -> tuple[np.ndarray, list[str]]:
    columns = list(numeric)
    rows = [[item.meta.get(k) if item.meta.get(k) is not None else -1 for k in numeric] for item in items]
    for key in categorical:
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
    """Each class's metadata: medians of the numbers (to two decimals, as each image's are measured), counts of
    modes and formats."""
    out = {}
    for c in classes:
        members = [i.meta for i in items if i.label == c]
        out[c] = {"images": len(members),
                  **{f"median_{k}": (round(float(np.median([m[k] for m in members if m.get(k) is not None])), 2)
                                     if any(m.get(k) is not None for m in members) else None) for k in NUMERIC},
                  **{key: {str(v): sum(1 for m in members if m.get(key) == v)
                           for v in sorted({m.get(key) for m in members}, key=str)} for key in CATEGORICAL}}
    return out


def metadata_trace(items: list[Item], classes: list[str], folds: int = 5, seed: int = 0) -> dict:
    """The cross-validated balanced accuracy of a random forest on file metadata alone against chance (1 /
    classes), the single features that predict best, and whether it is a trace (at least ``MARGIN`` above chance);
    also, for information, the same on the content statistics."""
    good = [i for i in items if not i.error]
    y = np.array([classes.index(i.label) for i in good])
    if len(set(y)) < 2 or np.bincount(y).min() < 2:
        return {"flagged": False, "reason": "too few images per class to cross-validate"}
    x, columns = _table(good)
    chance = 1.0 / len(set(y))
    score = _cv_balanced(x, y, folds, seed) if x.shape[1] and np.ptp(x, axis=0).any() else chance
    content = _cv_balanced(_table(good, CONTENT, ())[0], y, folds, seed)
    flagged = score >= chance + MARGIN
    singles = sorted(((_cv_balanced(x[:, [k]], y, folds, seed), name) for k, name in enumerate(columns)
                      if np.ptp(x[:, k]) > 0), reverse=True)[:3] if flagged else []  # what gives it away
    return {"balanced_accuracy": score, "chance": chance, "flagged": flagged,
            "content_balanced_accuracy": content, "content_features": list(CONTENT),
            "margin": MARGIN, "features": columns,
            "best_single_features": [{"feature": name, "balanced_accuracy": s} for s, name in singles]}
