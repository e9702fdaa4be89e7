"""``make_patches``: ``OUT/<class>/`` patches centred on the dots of each photo (optionally several, shifted by up to
``jitter`` pixels), ``OUT/<background_class>/`` windows drawn at random whose centres lie at least ``radius`` from
every dot of their photo, and ``OUT/manifest.csv`` (file, class, photo, centre row and col, the dot's row and col,
kind), so that splits can be made photo- or region-disjoint. The folder is written as a whole (nothing half-made);
a patch reaching past the photo's edge is filled with black there, so that it stays centred on its dot."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from cnnkit._io import replace_folder
from cnnkit.config import PatchConfig
from cnnkit.config.parse import Region
from cnnkit.data.dots import load_dots
from cnnkit.data.window import centred_window
from cnnkit.errors import ConfigError, DataError
from cnnkit.options import with_options
from cnnkit.patches.mine import false_detections
from cnnkit.patches.patch import Patch

log = logging.getLogger("cnnkit")

MANIFEST_COLUMNS = ("file", "class", "photo", "row", "col", "dot_row", "dot_col", "kind")


def _photo(path: Path) -> np.ndarray:
    from cnnkit.data.decode import load_image, probe_image

    info = probe_image(path)
    return np.asarray(load_image(path, (info.height, info.width), 1 if info.grayscale else 3, "bilinear"))


def dot_patches(dots, config: PatchConfig, rng: np.random.Generator) -> list[Patch]:
    out = []
    for label, row, col in dots:
        for k in range(config.per_dot):
            shift = rng.integers(-config.jitter, config.jitter + 1, size=2) if config.jitter and k else (0, 0)
            out.append(Patch(label, int(round(row)) + int(shift[0]), int(round(col)) + int(shift[1]), "dot",
                             (row, col)))
    return out


def background_patches(dots, shape: tuple[int, int], count: int, config: PatchConfig, rng: np.random.Generator,
                       path: Path) -> list[Patch]:
    """``count`` windows inside the photo whose centres are at least the radius from every dot."""
    radius = config.radius if config.radius is not None else float(config.size)
    half = config.size // 2
    rows = np.arange(half, shape[0] - (config.size - half) + 1)
    cols = np.arange(half, shape[1] - (config.size - half) + 1)
    points = np.array([(r, c) for _, r, c in dots], dtype=np.float64).reshape(-1, 2)
    out, tries = [], 0
    while len(out) < count and tries < 200 * max(count, 1):
        tries += 1
        r, c = int(rng.choice(rows)), int(rng.choice(cols))
        if len(points) and np.hypot(points[:, 0] - r, points[:, 1] - c).min() < radius:
            continue
        out.append(Patch(config.background_class, r, c, "background"))
    if len(out) < count:
        raise DataError(f"{path}: found only {len(out)} of {count} background windows at least {radius:g} pixels "
                        "from every dot; lower `backgrounds` or `radius`.")
    return out


def _plan(photo_path: Path, dots_path: Path, config: PatchConfig, rng: np.random.Generator,
          mining_runs: tuple = ()):
    """(the photo or its region, the patches in the photo's pixels, where the region starts)."""
    photo = _photo(photo_path)
    dots = load_dots(dots_path, *photo.shape[:2])
    top, bottom, left, right = (config.region or Region()).bounds(*photo.shape[:2], photo_path)
    photo = photo[top:bottom, left:right]
    if min(photo.shape[:2]) < config.size:
        if config.region:
            raise DataError(f"`region` {config.region} of photo {photo_path} is {photo.shape[0]} rows x "
                            f"{photo.shape[1]} columns, smaller than a {config.size}-pixel patch; widen `region` or "
                            "lower `size`.")
        raise DataError(f"Photo {photo_path} is {photo.shape[1]}x{photo.shape[0]} pixels, smaller than a "
                        f"{config.size}-pixel patch; lower `size`.")
    if any(label == config.background_class for label, _, _ in dots):
        raise DataError(f"Dots file {dots_path} names a class {config.background_class!r}, the folder of the "
                        "background patches; rename one of them (`background_class`).")
    moved, inside = (config.region or Region()).local(dots)  # in the region's pixels; all of them kept away
    if not inside:
        raise DataError(f"No dot of {dots_path} lies in `region` {config.region} of {photo_path}.")
    positives = dot_patches(inside, config, rng)
    count = len(positives) if config.backgrounds is None else config.backgrounds
    patches = positives + background_patches(moved, photo.shape[:2], count, config, rng, photo_path)
    for run in mining_runs:
        mined = false_detections(run, photo_path, moved, config, count,
                                 [p for p in patches if p.kind == "hard negative"])
        log.info("%s: %d hard negatives mined with %s", photo_path, len(mined), run)
        patches += mined
    return photo, [_shifted(p, top, left) for p in patches], (top, left)


def _shifted(patch: Patch, rows: int, cols: int) -> Patch:
    dot = None if patch.dot is None else (patch.dot[0] + rows, patch.dot[1] + cols)
    return replace(patch, row=patch.row + rows, col=patch.col + cols, dot=dot)


@with_options(PatchConfig)
def make_patches(photos: list[str | Path], dots: list[str | Path], out: str | Path,
                 config: PatchConfig | None = None, overwrite: bool = False,
                 hard_negatives: list[str | Path] | tuple = ()) -> dict[str, int]:
    """Cut patches from each photo with its dots file (paired in order) into ``out``; returns the count per class.

    ``hard_negatives``: runs whose most confident false detections on each photo (as many per run as the photo's
    random background windows) are added as background patches; the same seed gives the same dot and random
    patches, so a round's folder is the previous one plus its mined windows. Refuses an ``out`` that already exists
    unless ``overwrite`` (then it is replaced as a whole)."""
    from PIL import Image

    config = config or PatchConfig()
    photos, dots = [Path(p) for p in photos], [Path(d) for d in dots]
    if len(photos) != len(dots) or not photos:
        raise ConfigError(f"Expected one dots file per photo. Received: {len(photos)} photo(s) and {len(dots)} dots "
                          "file(s).")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file; `out` must be a folder to create.")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DataError(f"{out} already exists and is not empty; choose another `out`, or replace it with "
                        "`overwrite`.")
    rng = np.random.default_rng(config.seed)
    plans = [(path, *_plan(path, dots_path, config, rng, tuple(hard_negatives)))
             for path, dots_path in zip(photos, dots)]
    counts: dict[str, int] = {}

    def fill(folder: Path) -> None:
        manifest = io.StringIO()
        writer = csv.writer(manifest, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        for path, photo, patches, (top, left) in plans:
            for i, p in enumerate(patches):
                name = f"{p.label}/{path.stem}-{p.kind.replace(' ', '-')}-{i:05d}-r{p.row}-c{p.col}.png"
                (folder / p.label).mkdir(exist_ok=True)
                image = centred_window(photo, p.row - top, p.col - left, config.size)
                Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(folder / name)
                writer.writerow([name, p.label, str(path), p.row, p.col, *(p.dot or ("", "")), p.kind])
                counts[p.label] = counts.get(p.label, 0) + 1
        (folder / "manifest.csv").write_text(manifest.getvalue(), encoding="utf-8")

    replace_folder(out, fill)
    log.info("Patches in %s: %s", out, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return counts
