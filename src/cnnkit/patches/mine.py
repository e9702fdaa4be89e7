"""Hard negatives: a run's most confident false detections on a dotted photo, as background patches.

The run scans the whole photo (fully convolutional, as ``cnnkit scan``; a point detector reads its centre map);
every local maximum of an object class's probability whose centre lies at least the radius from every dot is a false
detection; the highest-scoring ones, at least a patch side apart, become background windows (kind "hard negative" in
the manifest). Train, mine, retrain: each round's run finds the windows the previous background patches did not
teach it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkit.config import PatchConfig
from cnnkit.errors import ConfigError
from cnnkit.patches.patch import Patch
from cnnkit.run import RunFolder


def _scores(run_dir: str | Path, photo_path: Path, config: PatchConfig):
    """(the run's scan of the photo or its region, its classes, the classes not counted, the scale it read at, and
    the photo's (height, width) where a window must lie wholly inside it, else None).
    A patch classifier reads the photo resized so that ``config.size`` becomes its input size; a point detector
    reads it at its own pixels (as it was trained: patches for it are cut at the photo's scale)."""
    from cnnkit.inference import NetworkPredictor, Predictor
    from cnnkit.scan.windows import load_photo, scan

    if RunFolder(run_dir).read_record().finds_points:
        from cnnkit.scan.points import load_point_detector, point_scan

        net, record = load_point_detector(run_dir)
        photo = load_photo(photo_path, 3, 1.0, config.region, grayscale_ok=True)
        label = [record.points.settings.label]  # its one centre map (a detector that names classes names it later)
        return point_scan(net, record, photo, None, "dense", 0, "32"), label, (), 1.0, photo.shape[:2]
    predictor = Predictor.load(run_dir, backend="torch")
    if not isinstance(predictor, NetworkPredictor):
        raise ConfigError(f"{run_dir} is a baseline run; mining hard negatives needs a CNN patch classifier or a "
                          "point detector that can scan a photo.")
    classes = predictor.classes
    ignore = tuple(c for c in classes if c.lower().startswith("background") or c == config.background_class)
    scale = predictor.preprocessing.image_size[0] / config.size  # the photo as the run saw its training patches
    photo = load_photo(photo_path, predictor.preprocessing.channels, scale, config.region)
    return scan(predictor.model, predictor.preprocessing, photo, None, "dense", 512), classes, ignore, scale, None


def _candidates_only(result, points: np.ndarray, radius: float, shape: tuple[int, int], size: int):
    """A point detector's map with -1 in every cell that cannot be mined (never a peak, as no probability is below
    0): its centre within ``radius`` of a dot, or its ``size`` window reaching past the photo (the map reaches the
    edges, where a window would be half black fill, which the detector never sees). Its peaks are then the strongest
    candidates, even beside a true object or an edge, whose higher peak would otherwise hide them."""
    from dataclasses import replace

    rows, cols = result.probabilities.shape[1:]
    ii, jj = np.mgrid[:rows, :cols]
    centres = np.stack([ii, jj], -1) * result.stride + np.array(result.window) / 2.0
    half = size // 2
    keep = ((centres >= half) & (centres <= np.array(shape) - (size - half))).all(-1)
    for row, col in points:
        keep &= np.hypot(centres[..., 0] - row, centres[..., 1] - col) >= radius
    return replace(result, probabilities=np.where(keep, result.probabilities, np.float32(-1.0)))


def false_detections(run_dir: str | Path, photo_path: Path, dots, config: PatchConfig, count: int,
                     taken: list[Patch] | tuple = ()) -> list[Patch]:
    """Up to ``count`` windows the run calls an object (a patch classifier's class not named background*, a point
    detector's centre with its window wholly inside the photo) far from every dot and at least a patch side from the
    ``taken`` windows (those an earlier run mined: two runs often share a false detection, and a copy teaches nothing
    new); with ``config.region`` only that part of the photo is scanned, and ``dots``, ``taken`` and the windows are
    in its pixels."""
    from cnnkit.scan.detect import detect

    result, classes, ignore, scale, inside = _scores(run_dir, photo_path, config)
    radius = config.radius if config.radius is not None else float(config.size)
    points = np.array([(r, c) for _, r, c in dots], dtype=np.float64).reshape(-1, 2)
    if inside is not None:
        result = _candidates_only(result, points, radius, inside, config.size)
    found = detect(result, classes, threshold=0.0, min_distance=config.size, ignore=ignore, scale=scale)
    kept: list[Patch] = []
    for d in sorted(found, key=lambda d: -d.score):
        if len(kept) == count:
            break
        far = not len(points) or np.hypot(points[:, 0] - d.row, points[:, 1] - d.col).min() >= radius
        apart = all(np.hypot(k.row - d.row, k.col - d.col) >= config.size for k in (*taken, *kept))
        if far and apart:
            kept.append(Patch(config.background_class, int(round(d.row)), int(round(d.col)), "hard negative"))
    return kept
