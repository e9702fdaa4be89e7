"""Synthetic aerial scenes for counting: textured ground and water with objects of three kinds, their dots, and
patches to train a patch classifier on.

Kinds (all seen from above): ``boat`` (white elongated hull, 11x5 px, any orientation, on water), ``car`` (red
square, 6x6 px, on ground), ``tree`` (dark green disc, radius 4-5 px, on ground); and ``background``.
Export layout::

    DIR/patches/{train,val,test}/{background,boat,car,tree}/*.png   (PATCH x PATCH RGB, object centred +-2 px)
    DIR/scenes/scene_K.png, DIR/scenes/scene_K-dots.csv             (class_name,row,col per object)
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

PATCH = 24
KINDS = ("boat", "car", "tree")


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: int) -> np.ndarray:
    coarse = rng.random((shape[0] // scale + 2, shape[1] // scale + 2))
    image = Image.fromarray((coarse * 255).astype(np.uint8)).resize((shape[1] + 2 * scale, shape[0] + 2 * scale),
                                                                     Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float64)[scale:scale + shape[0], scale:scale + shape[1]] / 255.0


def ground_and_water(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """An RGB float image in [0, 1] and the water mask: brownish-green textured ground, a smooth blue lake."""
    texture = 0.6 * _smooth_noise(rng, (height, width), 8) + 0.4 * rng.random((height, width))
    ground = np.stack([0.45 + 0.15 * texture, 0.42 + 0.2 * texture, 0.25 + 0.1 * texture], -1)
    lake = _smooth_noise(rng, (height, width), max(height, width) // 3)
    water = lake > np.quantile(lake, 0.65)
    ripple = 0.05 * _smooth_noise(rng, (height, width), 4)
    blue = np.stack([0.1 + ripple, 0.25 + ripple, 0.55 + 2 * ripple], -1)
    return np.where(water[..., None], blue, ground), water


def draw(image: np.ndarray, kind: str, row: float, col: float, rng: np.random.Generator) -> None:
    """Paint one object centred at (row, col)."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    dy, dx = yy - row, xx - col
    if kind == "car":
        mask = (np.abs(dy) <= 2.5) & (np.abs(dx) <= 2.5)
        colour = (0.85, 0.1, 0.1)
    elif kind == "tree":
        mask = dy ** 2 + dx ** 2 <= rng.uniform(4.0, 5.0) ** 2
        colour = (0.05, 0.3, 0.05)
    else:
        angle = rng.uniform(0, np.pi)
        u, v = dy * np.cos(angle) + dx * np.sin(angle), -dy * np.sin(angle) + dx * np.cos(angle)
        mask = (u / 5.5) ** 2 + (v / 2.5) ** 2 <= 1.0
        colour = (0.95, 0.95, 0.9)
    image[mask] = colour


def _place(rng: np.random.Generator, water: np.ndarray, kind: str, taken: list, margin: int, min_gap: float):
    h, w = water.shape
    for _ in range(200):
        row, col = rng.uniform(margin, h - margin), rng.uniform(margin, w - margin)
        if water[int(row), int(col)] != (kind == "boat"):
            continue
        if all((row - r) ** 2 + (col - c) ** 2 >= min_gap ** 2 for r, c in taken):
            return row, col
    return None


def make_scene(rng: np.random.Generator, height: int = 256, width: int = 256, per_kind: tuple[int, int] = (3, 8)):
    """An RGB uint8 scene and its dots [(kind, row, col)]."""
    image, water = ground_and_water(rng, height, width)
    dots, taken = [], []
    for kind in KINDS:
        for _ in range(int(rng.integers(*per_kind))):
            spot = _place(rng, water, kind, taken, margin=8, min_gap=16)
            if spot is not None:
                taken.append(spot)
                draw(image, kind, *spot, rng)
                dots.append((kind, round(spot[0], 1), round(spot[1], 1)))
    noise = rng.normal(0, 0.02, image.shape)
    return (np.clip(image + noise, 0, 1) * 255).round().astype(np.uint8), dots


def _patch(rng: np.random.Generator, kind: str) -> np.ndarray:
    """A patch centred on one object (+-2 px), or background (ground or water, no object)."""
    size = PATCH * 3
    for _ in range(100):
        image, water = ground_and_water(rng, size, size)
        centre = size // 2 + rng.uniform(-2, 2, 2)
        if kind != "background" and water[int(centre[0]), int(centre[1])] != (kind == "boat"):
            continue
        if kind != "background":
            draw(image, kind, centre[0], centre[1], rng)
        top = size // 2 - PATCH // 2
        crop = image[top:top + PATCH, top:top + PATCH] + rng.normal(0, 0.02, (PATCH, PATCH, 3))
        return (np.clip(crop, 0, 1) * 255).round().astype(np.uint8)
    raise RuntimeError("could not place a patch")  # pragma: no cover - the water share makes this unreachable


def export_aerial(out: Path, seed: int = 0, per_class: int | None = None, scenes: int = 4) -> dict[str, int]:
    """Patches (``per_class`` per class, split 60/20/20 into train/val/test) and ``scenes`` scenes with dots."""
    rng = np.random.default_rng(seed)
    per_class = per_class or 60
    counts = {}
    for kind in ("background", *KINDS):
        n_train, n_val = int(per_class * 0.6), int(per_class * 0.2)
        for i in range(per_class):
            split = "train" if i < n_train else "val" if i < n_train + n_val else "test"
            folder = out / "patches" / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(_patch(rng, kind)).save(folder / f"{kind}_{i:04d}.png")
        counts[kind] = per_class
    (out / "scenes").mkdir(parents=True, exist_ok=True)
    for k in range(scenes):
        image, dots = make_scene(rng)
        Image.fromarray(image).save(out / "scenes" / f"scene_{k}.png")
        with open(out / "scenes" / f"scene_{k}-dots.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["class_name", "row", "col"])
            writer.writerows(dots)
    return counts
