"""Synthetic wafer defect maps in the nine classes of the public WM-811K set.

A map is a round wafer of dies on a square grid; each die passes or fails. Pixel values follow WM-811K's
convention: 0 off the wafer, 127 a passing die, 255 a failing die. Each class is a spatial failure pattern
with random position, size and orientation, on top of random background failures.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from cnnkit._io import write_text

CLASSES = ("Center", "Donut", "Edge-Loc", "Edge-Ring", "Loc", "Near-full", "Random", "Scratch", "none")
# Roughly the order of WM-811K's labelled counts (none >> Edge-Ring > Edge-Loc > Center > Loc > ... > Near-full).
IMBALANCED_COUNTS = {"Center": 100, "Donut": 40, "Edge-Loc": 120, "Edge-Ring": 150, "Loc": 100, "Near-full": 20,
                     "Random": 50, "Scratch": 60, "none": 400}
GRID_RANGE = (26, 40)
OFF, PASS, FAIL = 0, 127, 255


class _Wafer:
    """Polar coordinates of every die, in units of the wafer radius (centre 0, edge 1)."""

    def __init__(self, n: int):
        centre = (n - 1) / 2.0
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
        self.y, self.x = (yy - centre) / (n / 2.0), (xx - centre) / (n / 2.0)
        self.r = np.hypot(self.x, self.y)
        self.theta = np.arctan2(self.y, self.x)
        self.inside = self.r <= 1.0
        self.n = n

    def distance_to(self, cy: float, cx: float) -> np.ndarray:
        return np.hypot(self.y - cy, self.x - cx)


def _soft(distance: np.ndarray, edge: float, softness: float = 0.04) -> np.ndarray:
    """1 well inside ``edge``, 0 well outside, a short ramp between."""
    return 1.0 / (1.0 + np.exp((distance - edge) / softness))


def _polar(rng: np.random.Generator, r_low: float, r_high: float) -> tuple[float, float]:
    radius, angle = rng.uniform(r_low, r_high), rng.uniform(-np.pi, np.pi)
    return radius * np.sin(angle), radius * np.cos(angle)


def _center(w: _Wafer, rng: np.random.Generator) -> np.ndarray:
    cy, cx = _polar(rng, 0.0, 0.08)
    return 0.9 * _soft(w.distance_to(cy, cx), rng.uniform(0.15, 0.35))


def _donut(w: _Wafer, rng: np.random.Generator) -> np.ndarray:
    cy, cx = _polar(rng, 0.0, 0.06)
    middle, half_width = rng.uniform(0.4, 0.6), rng.uniform(0.08, 0.15)
    return 0.9 * _soft(np.abs(w.distance_to(cy, cx) - middle), half_width)


def _edge_loc(w: _Wafer, rng: np.random.Generator) -> np.ndarray:
    cy, cx = _polar(rng, 0.85, 1.0)
    return 0.9 * _soft(w.distance_to(cy, cx), rng.uniform(0.25, 0.4))


def _edge_ring(w: _Wafer, rng: np.random.Generator) -> np.ndarray:
    width = rng.uniform(0.08, 0.16)
    span, start = np.deg2rad(rng.uniform(240, 360)), rng.uniform(-np.pi, np.pi)
    in_arc = np.mod(w.theta - start, 2 * np.pi) <= span
    return 0.85 * _soft(1.0 - w.r, width, 0.03) * in_arc


def _loc(w: _Wafer, rng: np.random.Generator) -> np.ndarray:
    cy, cx = _polar(rng, 0.3, 0.6)
    stretch, angle = rng.uniform(1.0, 1.8), rng.uniform(0, np.pi)
    dy, dx = w.y - cy, w.x - cx
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle)
    return 0.9 * _soft(np.hypot(along / stretch, across), rng.uniform(0.1, 0.18))


def _near_full(w: _Wafer, rng: np.random.Generator) -> np.ndarray:
    return np.full(w.r.shape, rng.uniform(0.75, 0.95))


def _random(w: _Wafer, rng: np.random.Generator) -> np.ndarray:
    return np.full(w.r.shape, rng.uniform(0.2, 0.45))


def _scratch(w: _Wafer, rng: np.random.Generator) -> np.ndarray:
    y0, x0 = _polar(rng, 0.0, 0.6)
    angle, length, bend = rng.uniform(-np.pi, np.pi), rng.uniform(0.8, 1.5), rng.uniform(-1.0, 1.0)
    t = np.linspace(0.0, length, 200)
    heading = angle + bend * t / length
    step = length / 199
    ys = y0 + np.cumsum(np.sin(heading) * step)
    xs = x0 + np.cumsum(np.cos(heading) * step)
    near = np.min(np.hypot(w.y[..., None] - ys, w.x[..., None] - xs), axis=-1)
    return 0.95 * _soft(near, 1.3 / w.n, 0.25 / w.n)


def _none(w: _Wafer, rng: np.random.Generator) -> np.ndarray:
    return np.zeros(w.r.shape)


PATTERNS: dict[str, Callable[[_Wafer, np.random.Generator], np.ndarray]] = {
    "Center": _center, "Donut": _donut, "Edge-Loc": _edge_loc, "Edge-Ring": _edge_ring, "Loc": _loc,
    "Near-full": _near_full, "Random": _random, "Scratch": _scratch, "none": _none,
}


def generate_wafer(kind: str, rng: np.random.Generator, grid: int | None = None) -> np.ndarray:
    """One wafer map of class ``kind`` as a (grid, grid) uint8 array (0 off-wafer, 127 pass, 255 fail)."""
    wafer = _Wafer(grid or int(rng.integers(GRID_RANGE[0], GRID_RANGE[1] + 1)))
    noise = rng.uniform(0.01, 0.06)
    fail_probability = np.maximum(PATTERNS[kind](wafer, rng), noise)
    failed = rng.random(wafer.r.shape) < fail_probability
    out = np.where(failed, FAIL, PASS).astype(np.uint8)
    out[~wafer.inside] = OFF
    return out


def class_counts(balanced: bool = False, per_class: int | None = None) -> dict[str, int]:
    if balanced:
        return {c: per_class or 100 for c in CLASSES}
    if per_class:  # scale the imbalanced profile so that the rarest class has ``per_class`` images
        factor = per_class / min(IMBALANCED_COUNTS.values())
        return {c: max(1, int(round(n * factor))) for c, n in IMBALANCED_COUNTS.items()}
    return dict(IMBALANCED_COUNTS)


def export_wafers(out: Path, seed: int = 0, balanced: bool = False, per_class: int | None = None) -> dict[str, int]:
    counts = class_counts(balanced, per_class)
    for index, (kind, count) in enumerate(counts.items()):
        rng = np.random.default_rng([seed, index])  # each class its own stream: counts do not shift the others
        folder = out / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray(generate_wafer(kind, rng), mode="L").save(folder / f"wafer_{i:04d}.png")
    return counts


# Mixed-type defects, as in the public MixedWM38 set: any one of these patterns, none, or two together.
MIXED_PATTERNS = ("Center", "Donut", "Edge-Loc", "Edge-Ring", "Loc", "Scratch")
MIXED_PAIRS = (("Center", "Edge-Loc"), ("Center", "Edge-Ring"), ("Center", "Loc"), ("Center", "Scratch"),
               ("Donut", "Edge-Loc"), ("Donut", "Edge-Ring"), ("Donut", "Loc"), ("Donut", "Scratch"),
               ("Edge-Loc", "Loc"), ("Edge-Loc", "Scratch"), ("Edge-Ring", "Loc"), ("Edge-Ring", "Scratch"),
               ("Loc", "Scratch"))


def generate_mixed_wafer(kinds: tuple[str, ...], rng: np.random.Generator, grid: int | None = None) -> np.ndarray:
    """One wafer map carrying every pattern in ``kinds`` (none: background failures only)."""
    wafer = _Wafer(grid or int(rng.integers(GRID_RANGE[0], GRID_RANGE[1] + 1)))
    fail_probability = np.full(wafer.r.shape, rng.uniform(0.01, 0.06))
    for kind in kinds:
        fail_probability = np.maximum(fail_probability, PATTERNS[kind](wafer, rng))
    out = np.where(rng.random(wafer.r.shape) < fail_probability, FAIL, PASS).astype(np.uint8)
    out[~wafer.inside] = OFF
    return out


def export_mixed_wafers(out: Path, seed: int = 0, per_combination: int | None = None) -> dict[str, int]:
    """``out/images/*.png`` and ``out/labels.csv`` (path,label with labels such as ``Center|Scratch``, empty for a
    wafer without defect): every single pattern, none, and the pairs of ``MIXED_PAIRS``, ``per_combination`` each
    (default 30). Returns the images per label set."""
    import csv
    import io

    combinations = [(), *((k,) for k in MIXED_PATTERNS), *MIXED_PAIRS]
    per = per_combination or 30
    folder = out / "images"
    folder.mkdir(parents=True, exist_ok=True)
    rows, counts = [], {}
    for index, kinds in enumerate(combinations):
        rng = np.random.default_rng([seed, 100 + index])
        name = "|".join(sorted(kinds))
        counts[name or "(none)"] = per
        for i in range(per):
            file = f"images/{'_'.join(sorted(kinds)) or 'none'}_{i:04d}.png"
            Image.fromarray(generate_mixed_wafer(kinds, rng), mode="L").save(out / file)
            rows.append((file, name))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("path", "label"))
    writer.writerows(rows)
    write_text(out / "labels.csv", text.getvalue())
    return counts
