"""What a point detector learns from: dotted photos (or a region of each), as an image and a map of object centres
at the network's cell, and optionally folders of patches; and the batches drawn from them.

The target is CenterNet's: in each cell, a Gaussian (sigma one cell) of its distance to the nearest dot, exactly 1
in the cell holding a dot. A detector that also names classes (``by_class``) learns each dot's class in its cell and
the 8 around it (the nearest dot's where two reach; no class elsewhere). A batch is ``batch_size`` crops of the
photos (60% of them around a dot, the others anywhere), each turned by a random quarter turn and flip, plus as many
patches with ``patches``: an object's patch teaches its centre cell and the 5x5 cells around it (beyond, it is
unlabelled), and its class folder's name as the dots' class; a background* patch teaches background in all its
cells. Batch ``k`` is drawn from a generator seeded with (seed, k), so a resumed training sees exactly the batches
the uninterrupted one would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.config import PointsConfig
from cnnkit.config.parse import Region
from cnnkit.data.dots import load_dots
from cnnkit.data.layout import is_image_file
from cnnkit.errors import DataError

NEAR_SHARE = 0.6  # crops drawn around a dot
PATCH_REACH = 2  # an object's patch teaches the cells within this many of its centre
CLASS_REACH = 1  # a dot (an object's patch) teaches its class to the cells within this many of its own


@dataclass
class DottedPhoto:
    path: Path
    pixels: np.ndarray  # (H, W, 3) uint8: the region
    dots: list[tuple[float, float]]  # in the region's pixels
    target: np.ndarray  # (H // cell, W // cell) float32
    dots_path: Path
    labels: list[str]  # each dot's class
    file_labels: frozenset[str]  # every class the dots file names (inside the region or not)
    classes: np.ndarray | None = None  # (H // cell, W // cell) int64: the class taught in each cell, -1 none


@dataclass
class PatchSet:
    pixels: np.ndarray  # (N, S, S, 3) uint8
    objects: np.ndarray  # (N,) bool: an object's patch (else background)
    folders: tuple[Path, ...]  # the folders they came from
    source: np.ndarray  # (N,) int: each patch's folder (an index into ``folders``)
    names: np.ndarray | None = None  # (N,) str: each patch's class folder
    classes: np.ndarray | None = None  # (N,) int64: the class an object's patch teaches (-1: none)

    def counts(self) -> list[tuple[Path, int, int]]:
        """(folder, object patches, background patches) for each folder."""
        return [(folder, int(self.objects[self.source == k].sum()), int((~self.objects[self.source == k]).sum()))
                for k, folder in enumerate(self.folders)]


def centre_target(shape: tuple[int, int], dots: list[tuple[float, float]], cell: int) -> np.ndarray:
    """Each cell's Gaussian (sigma one cell) of its centre's distance to the nearest dot; 1 where a dot lies."""
    target = np.zeros(shape, np.float32)
    reach = 3
    for row, col in dots:
        i, j = int(row // cell), int(col // cell)
        a, b = max(0, i - reach), max(0, j - reach)
        ii, jj = np.mgrid[a:min(shape[0], i + reach + 1), b:min(shape[1], j + reach + 1)]
        d2 = ((ii + 0.5) * cell - row) ** 2 + ((jj + 0.5) * cell - col) ** 2
        np.maximum(target[a:a + ii.shape[0], b:b + ii.shape[1]], np.exp(-d2 / (2 * cell**2)), out=target[
            a:a + ii.shape[0], b:b + ii.shape[1]])
        if i < shape[0] and j < shape[1]:
            target[i, j] = 1.0
    return target


def load_dotted(photo: str | Path, dots_path: str | Path, region: Region | None, crop: int, cell: int) -> DottedPhoto:
    """The photo (its region) in colour, its dots inside the region, and their centre map; clear errors naming the
    file for a missing dot, a region past the photo or one smaller than a crop."""
    from cnnkit.data.decode import load_image, probe_image

    info = probe_image(photo)
    dots = load_dots(dots_path, info.height, info.width)
    top, bottom, left, right = (region or Region()).bounds(info.height, info.width, photo)
    if min(bottom - top, right - left) < crop:
        where = f"`region` {region} of photo {photo}" if region else f"Photo {photo}"
        raise DataError(f"{where} is {bottom - top} rows x {right - left} columns, smaller than a {crop}-pixel "
                        f"training crop; lower `crop`{' or widen `region`' if region else ''}.")
    inside = (region or Region()).local(dots)[1]
    if not inside:
        raise DataError(f"No dot of {dots_path} lies in `region` {region} of {photo}: nothing to learn there.")
    pixels = np.asarray(load_image(photo, (info.height, info.width), 3, "bilinear"))[top:bottom, left:right]
    points = [(r, c) for _, r, c in inside]
    shape = ((bottom - top) // cell, (right - left) // cell)
    return DottedPhoto(Path(photo), np.ascontiguousarray(pixels), points, centre_target(shape, points, cell),
                       Path(dots_path), [label for label, _, _ in inside], frozenset(label for label, _, _ in dots))


def class_target(shape: tuple[int, int], dots: list[tuple[float, float]], classes: list[int], cell: int) -> np.ndarray:
    """Each dot's class in its cell and the cells within ``CLASS_REACH`` of it (the nearest dot's, where two
    reach), -1 elsewhere (no class taught)."""
    target, nearest = np.full(shape, -1, np.int64), np.full(shape, np.inf)
    for (row, col), k in zip(dots, classes):
        i, j = int(row // cell), int(col // cell)
        a, b = max(0, i - CLASS_REACH), max(0, j - CLASS_REACH)
        ii, jj = np.mgrid[a:min(shape[0], i + CLASS_REACH + 1), b:min(shape[1], j + CLASS_REACH + 1)]
        d2 = ((ii + 0.5) * cell - row) ** 2 + ((jj + 0.5) * cell - col) ** 2
        closer = d2 < nearest[ii, jj]
        target[ii[closer], jj[closer]], nearest[ii[closer], jj[closer]] = k, d2[closer]
    return target


def class_names(photos: list[DottedPhoto], patches: PatchSet | None) -> tuple[str, ...]:
    """The classes a detector that names them learns: every class of the dots files and of the object patches."""
    names = set().union(*(p.file_labels for p in photos))
    if patches is not None:
        names |= set(patches.names[patches.objects].tolist())
    return tuple(sorted(names))


def _patch_files(folder: Path) -> list[tuple[Path, str]]:
    """(image, its class folder's name) for every image of ``folder``'s class folders."""
    if not folder.is_dir():
        raise DataError(f"`patches` folder {folder} does not exist.")
    files = [(p, d.name) for d in sorted(folder.iterdir()) if d.is_dir() and not d.name.startswith(".")
             for p in sorted(d.iterdir()) if is_image_file(p)]
    if not files:
        raise DataError(f"`patches` folder {folder} has no class folders of images (background* folders hold "
                        "background patches, the others objects).")
    return files


def load_patches(folders: str | Path | list, cell: int) -> PatchSet:
    """Every image of each folder's class folders: background* folders hold background, the others objects. All
    patches, of every folder, must have one square size of at least 5 cells."""
    from cnnkit.data.decode import load_image, probe_image

    folders = [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]
    files = [(path, name, k) for k, folder in enumerate(folders) for path, name in _patch_files(folder)]
    first = probe_image(files[0][0])
    side = first.height
    if first.width != side or side < 5 * cell:
        raise DataError(f"Patch {files[0][0]} is {first.width}x{first.height} pixels; patches must be square and at "
                        f"least {5 * cell} pixels.")
    pixels = np.zeros((len(files), side, side, 3), np.uint8)
    for k, (path, _, _) in enumerate(files):
        info = probe_image(path)
        if (info.height, info.width) != (side, side):
            raise DataError(f"Patch {path} is {info.width}x{info.height} pixels, {files[0][0]} {side}x{side}: all "
                            "patches of `patches` must have one size (the photos' scale).")
        pixels[k] = load_image(path, (side, side), 3, "bilinear")
    names = np.array([name for _, name, _ in files])
    objects = ~np.char.startswith(np.char.lower(names), "background")
    return PatchSet(pixels, objects, tuple(folders), np.array([k for _, _, k in files]), names)


def _turn(image: np.ndarray, maps: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    k, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
    out = []
    for item in (image, *maps):
        item = np.rot90(item, k)
        out.append(np.ascontiguousarray(item[:, ::-1] if flip else item))
    return out


def crop_batch(photos: list[DottedPhoto], count: int, crop: int, cell: int, rng: np.random.Generator):
    """(images (N, crop, crop, 3) uint8, targets (N, crop/cell, crop/cell), classes (the same, int64: the class
    taught in each cell, -1 none)), crops aligned to the cells."""
    images, targets, classes = [], [], []
    for _ in range(count):
        photo = photos[int(rng.integers(len(photos)))]
        height, width = photo.pixels.shape[:2]
        if rng.random() < NEAR_SHARE:
            row, col = photo.dots[int(rng.integers(len(photo.dots)))]
            a = int(np.clip(row - rng.integers(16, crop - 16), 0, height - crop))
            b = int(np.clip(col - rng.integers(16, crop - 16), 0, width - crop))
        else:
            a, b = int(rng.integers(0, height - crop + 1)), int(rng.integers(0, width - crop + 1))
        a, b = a // cell * cell, b // cell * cell
        cells = np.s_[a // cell:a // cell + crop // cell, b // cell:b // cell + crop // cell]
        named = photo.classes[cells] if photo.classes is not None else np.full(photo.target[cells].shape, -1)
        image, target, named = _turn(photo.pixels[a:a + crop, b:b + crop], [photo.target[cells], named], rng)
        images.append(image)
        targets.append(target)
        classes.append(named)
    return np.stack(images), np.stack(targets), np.stack(classes)


def patch_batch(patches: PatchSet, count: int, cell: int, rng: np.random.Generator):
    """(images, targets, masks, classes): an object's patch teaches its centre's 5x5 cells (and its class, when
    ``patches.classes`` says one, the 3x3 around its centre), a background patch all cells."""
    picks = rng.choice(len(patches.pixels), count, replace=count > len(patches.pixels))
    side = patches.pixels.shape[1]
    n = side // cell
    centre = [(side / 2.0, side / 2.0)]
    images, targets, masks, classes = [], [], [], []
    for k in picks:
        target, mask = np.zeros((n, n), np.float32), np.ones((n, n), np.float32)
        named = np.full((n, n), -1, np.int64)
        if patches.objects[k]:
            target = centre_target((n, n), centre, cell)
            mask[:] = 0
            mask[n // 2 - PATCH_REACH:n // 2 + PATCH_REACH + 1, n // 2 - PATCH_REACH:n // 2 + PATCH_REACH + 1] = 1
            if patches.classes is not None:
                named = class_target((n, n), centre, [int(patches.classes[k])], cell)
        image, target, mask, named = _turn(patches.pixels[k][:n * cell, :n * cell], [target, mask, named], rng)
        images.append(image)
        targets.append(target)
        masks.append(mask)
        classes.append(named)
    return np.stack(images), np.stack(targets), np.stack(masks), np.stack(classes)


def training_data(photos: list, dots: list, config: PointsConfig, cell: int,
                  classes: tuple[str, ...] | None = None) -> tuple[list[DottedPhoto], PatchSet | None]:
    """The dotted photos and the patches; with ``config.by_class``, each with the classes it teaches, of
    ``classes`` (default: ``class_names``, every class of the dots files and object patches)."""
    photos, dots = ([x] if isinstance(x, (str, Path)) else list(x) for x in (photos, dots))  # one photo as a path
    if len(photos) != len(dots) or not photos:
        raise DataError(f"`dots` takes one CSV per photo, in the same order: {len(photos)} photo(s), {len(dots)} dots "
                        "file(s).")
    loaded = [load_dotted(p, d, config.region, config.crop, cell) for p, d in zip(photos, dots)]
    patches = load_patches(config.patches, cell) if config.patches else None
    if config.by_class:
        classes = classes or class_names(loaded, patches)
        index = {name: k for k, name in enumerate(classes)}
        for photo in loaded:
            photo.classes = class_target(photo.target.shape, photo.dots, [index.get(x, -1) for x in photo.labels],
                                         cell)
        if patches is not None:
            patches.classes = np.array([index.get(x, -1) if o else -1 for x, o in zip(patches.names, patches.objects)])
    return loaded, patches
