"""From probability maps to detections and counts, and a comparison with experts' dots."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnkit.scan.scan import ScanResult


@dataclass(frozen=True)
class Detection:
    label: str
    row: float
    col: float
    score: float


def detect(result: ScanResult, classes: list[str], threshold: float | dict[str, float] = 0.5,
           min_distance: float = 8.0, ignore: tuple[str, ...] = ("background",),
           scale: float = 1.0) -> list[Detection]:
    """Local maxima of each class's probability at least ``threshold`` (one for all, or per class), at least
    ``min_distance`` pixels apart (of the original photo); positions in the original photo's pixels (``scale``
    undone)."""
    from scipy.ndimage import maximum_filter

    radius = max(1, int(np.ceil(min_distance * scale / result.stride)))
    found = []
    for k, name in enumerate(classes):
        if name in ignore:
            continue
        p = result.probabilities[k]
        least = threshold.get(name, 0.5) if isinstance(threshold, dict) else threshold
        peaks = (p >= least) & (p == maximum_filter(p, size=2 * radius + 1, mode="constant", cval=-1.0))
        for i, j in zip(*np.nonzero(peaks)):
            row, col = result.centre(int(i), int(j))
            found.append(Detection(name, row / scale, col / scale, float(p[i, j])))
    found = _suppress_plateaus(found, min_distance)
    return sorted(found, key=lambda d: (d.label, -d.score))


def _suppress_plateaus(found: list[Detection], min_distance: float) -> list[Detection]:
    """Equal neighbouring maxima (a flat top) count once."""
    kept: list[Detection] = []
    for d in sorted(found, key=lambda d: -d.score):
        if all(k.label != d.label or (k.row - d.row) ** 2 + (k.col - d.col) ** 2 >= min_distance ** 2 for k in kept):
            kept.append(d)
    return kept


def compare_with_dots(detections: list[Detection], dots: list[tuple[str, float, float]], classes: list[str],
                      radius: float) -> dict:
    """Per class: counts, count error, and precision/recall of detections matched to dots within ``radius``
    (greedy, highest score first, each dot matched once)."""
    report = {}
    for name in sorted({d.label for d in detections} | {c for c, _, _ in dots}):
        mine = sorted((d for d in detections if d.label == name), key=lambda d: -d.score)
        theirs = [(r, c) for label, r, c in dots if label == name]
        free = list(range(len(theirs)))
        matched = 0
        for d in mine:
            if not free:
                break
            distances = [np.hypot(d.row - theirs[k][0], d.col - theirs[k][1]) for k in free]
            best = int(np.argmin(distances))
            if distances[best] <= radius:
                matched += 1
                free.pop(best)
        report[name] = {"detected": len(mine), "dots": len(theirs), "count_error": len(mine) - len(theirs),
                        "matched": matched, "precision": matched / len(mine) if mine else None,
                        "recall": matched / len(theirs) if theirs else None,
                        "known_class": name in classes}
    return report


def overall_with_dots(detections: list[Detection], dots: list[tuple[str, float, float]], radius: float) -> dict:
    """Class-agnostic: all detections against all dots (count error, precision, recall; greedy matching within
    ``radius``, highest score first, each dot once), and for matched pairs the confusion between classes
    (``confusion[true][predicted]``)."""
    free = list(range(len(dots)))
    confusion: dict[str, dict[str, int]] = {}
    matched = 0
    for d in sorted(detections, key=lambda d: -d.score):
        if not free:
            break
        distances = [np.hypot(d.row - dots[k][1], d.col - dots[k][2]) for k in free]
        best = int(np.argmin(distances))
        if distances[best] <= radius:
            true = dots[free.pop(best)][0]
            confusion.setdefault(true, {}).setdefault(d.label, 0)
            confusion[true][d.label] += 1
            matched += 1
    return {"detected": len(detections), "dots": len(dots), "count_error": len(detections) - len(dots),
            "matched": matched, "precision": matched / len(detections) if detections else None,
            "recall": matched / len(dots) if dots else None, "confusion": confusion}


THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))


def choose_thresholds(result: ScanResult, classes: list[str], dots: list[tuple[str, float, float]],
                      min_distance: float, radius: float, ignore: tuple[str, ...], scale: float = 1.0) -> dict:
    """Per class with dots on this (validation) photo: the threshold of ``THRESHOLD_GRID`` with the best F1 of its
    detections against its dots (ties: the higher threshold); classes without dots here keep 0.5. Returns
    ``{"per_class": ..., "f1": ...}``."""
    per_class, f1 = {}, {}
    low = detect(result, classes, min(THRESHOLD_GRID), min_distance, ignore, scale)
    for name in classes:
        if name in ignore:
            continue
        theirs = [d for d in dots if d[0] == name]
        if not theirs:
            per_class[name] = 0.5
            continue
        best = (-1.0, 0.5)
        for t in THRESHOLD_GRID:
            mine = [d for d in low if d.label == name and d.score >= t]
            r = compare_with_dots(mine, theirs, classes, radius).get(name, {})
            p, rc = r.get("precision") or 0.0, r.get("recall") or 0.0
            score = 2 * p * rc / (p + rc) if p + rc else 0.0
            if score >= best[0]:
                best = (score, t)
        f1[name], per_class[name] = best
    return {"per_class": per_class, "f1": f1}
