"""From probability maps to detections and counts, and a comparison with experts' dots."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cnnkit.scan.windows import ScanResult


@dataclass(frozen=True)
class Detection:
    label: str
    row: float
    col: float
    score: float
    first_label: str | None = None  # verified (two-stage scan): the first run's class and score
    first_score: float | None = None


def _per_class(value: float | dict[str, float], name: str, default: float) -> float:
    return value.get(name, default) if isinstance(value, dict) else value


def detect(result: ScanResult, classes: list[str], threshold: float | dict[str, float] = 0.5,
           min_distance: float | dict[str, float] = 8.0, ignore: tuple[str, ...] = ("background",),
           scale: float = 1.0) -> list[Detection]:
    """Local maxima of each class's probability at least ``threshold`` (one for all, or per class), at least
    ``min_distance`` pixels apart (of the original photo; one for all, or per class: 8 for a class it lacks);
    positions in the original photo's pixels (``scale`` undone)."""
    from skimage.feature import peak_local_max

    found = []
    for k, name in enumerate(classes):
        if name in ignore:
            continue
        p = result.probabilities[k]
        radius = max(1, int(np.ceil(_per_class(min_distance, name, 8.0) * scale / result.stride)))
        least = _per_class(threshold, name, 0.5)
        # scikit-image keeps values above threshold_abs: the float just below ``least`` keeps ``p >= least``
        peaks = peak_local_max(p, min_distance=radius, threshold_abs=np.nextafter(least, -np.inf, dtype=p.dtype),
                               threshold_rel=None, exclude_border=False)
        for i, j in peaks:
            row, col = result.centre(int(i), int(j))
            found.append(Detection(name, row / scale, col / scale, float(p[i, j])))
    found = suppress_plateaus(found, min_distance)
    return sorted(found, key=lambda d: (d.label, -d.score))


def suppress_plateaus(found: list[Detection], min_distance: float | dict[str, float]) -> list[Detection]:
    """Equal neighbouring maxima (a flat top) count once, and maxima of one class closer than its ``min_distance``
    in the photo's pixels (Euclidean; scikit-image spaces them on the grid) keep the higher. The kept maxima are
    filed in square cells at least ``min_distance`` wide, so that each is compared with those of the 5x5 cells
    around it only (all closer ones lie there): linear in the maxima, where comparing each with all was quadratic
    (hours for the maxima of a large photo of noise)."""
    kept: list[Detection] = []
    cells: dict[tuple[str, int, int], list[Detection]] = {}
    for d in sorted(found, key=lambda d: -d.score):
        least = _per_class(min_distance, d.label, 8.0)
        side = max(least, 1e-3)
        i, j = math.floor(d.row / side), math.floor(d.col / side)
        near = (k for a in range(i - 2, i + 3) for b in range(j - 2, j + 3) for k in cells.get((d.label, a, b), ()))
        if all((k.row - d.row) ** 2 + (k.col - d.col) ** 2 >= least ** 2 for k in near):
            kept.append(d)
            cells.setdefault((d.label, i, j), []).append(d)
    return kept


def match_within(points: list[tuple[float, float]], dots: list[tuple[float, float]], radius: float
                 ) -> list[tuple[int, int]]:
    """Pairs (point, dot) at most ``radius`` apart, each used once: the most pairs possible, then the least total
    distance (scipy's optimal assignment; a greedy nearest-first pass can leave a dot unmatched that had a partner)."""
    from scipy.optimize import linear_sum_assignment

    if not points or not dots:
        return []
    distance = np.hypot(np.subtract.outer([p[0] for p in points], [d[0] for d in dots]),
                        np.subtract.outer([p[1] for p in points], [d[1] for d in dots]))
    too_far = distance > radius
    # a near pair costs at most the radius, so a far pair costs more than all near pairs together (also at radius 0)
    cost = np.where(too_far, (radius + 1.0) * (len(points) + len(dots) + 1), distance)
    rows, cols = linear_sum_assignment(cost)
    return [(int(i), int(j)) for i, j in zip(rows, cols) if not too_far[i, j]]


def compare_with_dots(detections: list[Detection], dots: list[tuple[str, float, float]], classes: list[str],
                      radius: float) -> dict:
    """Per class: counts, count error, and precision/recall of detections matched to dots within ``radius``
    (``match_within``: each dot matched once, as many as possible)."""
    report = {}
    for name in sorted({d.label for d in detections} | {c for c, _, _ in dots}):
        mine = [d for d in detections if d.label == name]
        theirs = [(r, c) for label, r, c in dots if label == name]
        matched = len(match_within([(d.row, d.col) for d in mine], theirs, radius))
        report[name] = {"detected": len(mine), "dots": len(theirs), "count_error": len(mine) - len(theirs),
                        "matched": matched, "precision": matched / len(mine) if mine else None,
                        "recall": matched / len(theirs) if theirs else None,
                        "known_class": name in classes}
    return report


def overall_with_dots(detections: list[Detection], dots: list[tuple[str, float, float]], radius: float) -> dict:
    """Class-agnostic: all detections against all dots (count error, precision, recall; matched with
    ``match_within``), and for matched pairs the confusion between classes (``confusion[true][predicted]``)."""
    confusion: dict[str, dict[str, int]] = {}
    pairs = match_within([(d.row, d.col) for d in detections], [(r, c) for _, r, c in dots], radius)
    for i, j in pairs:
        true = dots[j][0]
        confusion.setdefault(true, {}).setdefault(detections[i].label, 0)
        confusion[true][detections[i].label] += 1
    matched = len(pairs)
    return {"detected": len(detections), "dots": len(dots), "count_error": len(detections) - len(dots),
            "matched": matched, "precision": matched / len(detections) if detections else None,
            "recall": matched / len(dots) if dots else None, "confusion": confusion}


THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))
DISTANCE_FACTORS = (1.0, 0.5, 0.75, 1.5)  # times the scan's least distance; the first wins ties


def _best_threshold(found: list[Detection], name: str, theirs: list, classes: list[str],
                    radius: float) -> tuple[float, float]:
    """(F1, threshold) of ``THRESHOLD_GRID``'s best for class ``name`` (ties: the higher threshold)."""
    best = (-1.0, 0.5)
    for t in THRESHOLD_GRID:
        mine = [d for d in found if d.label == name and d.score >= t]
        r = compare_with_dots(mine, theirs, classes, radius).get(name, {})
        p, rc = r.get("precision") or 0.0, r.get("recall") or 0.0
        score = 2 * p * rc / (p + rc) if p + rc else 0.0
        if score >= best[0]:
            best = (score, t)
    return best


def choose_thresholds(result: ScanResult, classes: list[str], dots: list[tuple[str, float, float]],
                      min_distance: float, radius: float, ignore: tuple[str, ...], scale: float = 1.0,
                      factors: tuple[float, ...] = DISTANCE_FACTORS) -> dict:
    """Per class with dots on this (validation) photo: the threshold of ``THRESHOLD_GRID`` and the least distance
    between detections (``factors`` times ``min_distance``) with the best F1 of its detections against its
    dots (ties: the higher threshold, then the earlier factor); classes without dots here keep 0.5 and
    ``min_distance``. Returns ``{"per_class": thresholds, "min_distance": distances, "f1": ...}``."""
    per_class, distances, f1 = {}, {}, {}
    found = {factor: detect(result, classes, min(THRESHOLD_GRID), factor * min_distance, ignore, scale)
             for factor in factors}
    for name in classes:
        if name in ignore:
            continue
        theirs = [d for d in dots if d[0] == name]
        per_class[name], distances[name] = 0.5, float(min_distance)
        if not theirs:
            continue
        best = (-1.0, 0.5, min_distance)
        for factor in factors:
            score, t = _best_threshold(found[factor], name, theirs, classes, radius)
            if score > best[0]:
                best = (score, t, factor * min_distance)
        f1[name], per_class[name], distances[name] = best[0], best[1], float(best[2])
    return {"per_class": per_class, "min_distance": distances, "f1": f1}
