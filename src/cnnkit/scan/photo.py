"""``cnnkit scan RUN PHOTO``: everything from loading the photo to the files in the output folder."""

from __future__ import annotations

import logging
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cnnkit._io import replace_folder, write_json
from cnnkit.config import ScanConfig
from cnnkit.config.parse import Region
from cnnkit.data.decode import probe_image
from cnnkit.data.dots import load_dots
from cnnkit.errors import ConfigError, OutputError
from cnnkit.inference import NetworkPredictor, Predictor
from cnnkit.options import with_options
from cnnkit.run.lock import locked_if_inside
from cnnkit.run.tasks import require
from cnnkit.scan.detect import compare_with_dots, detect, overall_with_dots
from cnnkit.scan.output import write_outputs
from cnnkit.scan.windows import load_photo, scan
from cnnkit.scan.verify import Verification, background_classes, load_verifier, verify

log = logging.getLogger("cnnkit")


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _thresholds(run_dir, config: ScanConfig, result, scanner: Scanner, dots, matching: tuple,
                dots_path) -> tuple[float | dict, float | dict]:
    """(threshold, least distance in the photo's pixels): one asked for, else those chosen now on this photo (and
    stored), else the run's stored ones, else the scanner's defaults (0.5, or a point detector's own; ``matching``'s
    distance). Distances are stored as factors of the default (half a patch at the scan's ``scale``), so that a scan
    at another scale keeps them. A point detector's one class is chosen against every dot, whatever its class."""
    from cnnkit.run import RunFolder
    from cnnkit.scan.detect import DISTANCE_FACTORS, choose_thresholds

    min_distance, radius, ignore = matching
    default = scanner.spacing / config.scale
    if config.choose_thresholds:
        if dots is None:
            raise ConfigError("`choose_thresholds` chooses each class's threshold against the experts' dots: give "
                              "`dots` for this photo.")
        if not scanner.names_classes:
            dots = [(scanner.classes[0], row, col) for _, row, col in dots]
        asked = config.min_distance is not None  # a distance asked for is kept for every class: thresholds are chosen
        chosen = choose_thresholds(result, scanner.classes, dots, min_distance, radius, ignore, config.scale,
                                   factors=(1.0,) if asked else DISTANCE_FACTORS)
        where = f" in region {config.region}" if config.region else ""
        factors = {name: round(d / default, 4) for name, d in chosen["min_distance"].items()}
        RunFolder(run_dir).store_scan_thresholds(chosen["per_class"], f"chosen on {dots_path}{where}", factors)
        return chosen["per_class"], chosen["min_distance"]
    stored = RunFolder(run_dir).read_record().scan_thresholds
    if config.min_distance is None and stored and stored.distance_factors:  # every class: one stored without, default
        min_distance = {name: stored.distance_factors.get(name, 1.0) * default for name in scanner.classes}
    if config.detection_threshold is not None:
        return config.detection_threshold, min_distance
    return (dict(stored.per_class) if stored else scanner.default_threshold), min_distance


def _expected_dots(dots, photo_path) -> list | None:
    """The dots file's dots (None without one), every one checked to lie in the photo (``data.dots.load_dots``); a
    photo without objects may have a header alone (then every detection is a false one)."""
    if not dots:
        return None
    info = probe_image(photo_path)
    return load_dots(dots, info.height, info.width, allow_empty=True)


def _check_ignored(ignore, classes: list[str], run_dir) -> None:
    """``ignore`` names classes of the scanning run only: any other name would leave its class counted."""
    unknown = [name for name in ignore or () if name not in classes]
    if unknown:
        raise ConfigError(f"`ignore` names {', '.join(map(repr, unknown))}, not a class of {run_dir}; its classes: "
                          f"{', '.join(classes)}.")


def in_region(dots: list | None, region: Region | None) -> tuple[list | None, int | None]:
    """The dots inside ``region``, in its pixels, and how many were left out (None without a region or dots)."""
    if dots is None or region is None:
        return dots, None
    inside = region.local(dots)[1]
    return inside, len(dots) - len(inside)


def _verified(config: ScanConfig, verifier: Predictor | None, photo_path, photo, channels: int, detections: list,
              classes: list[str]) -> tuple[list, Verification | None, list[str]]:
    """The detections the verifying run keeps (all of them, unverified, without one), its record, and the classes
    a detection may now have (the scanning run's, and the verifier's, background aside, unless it keeps the class)."""
    if verifier is None:
        return detections, None, classes
    if verifier.preprocessing.channels != channels:  # the verifier's own colours
        photo = load_photo(photo_path, verifier.preprocessing.channels, config.scale, config.region)
    kept, verification = verify(detections, photo, verifier, config.verify_side, config.scale, config.verify_batch,
                                config.verify_keeps_class)
    if config.verify_keeps_class:
        return kept, verification, classes
    extra = [x for x in verifier.classes if x not in classes and x not in background_classes(verifier.classes)]
    return kept, verification, classes + extra


@dataclass(kw_only=True)
class Scanner:
    """What scans a photo: a patch classifier's dense form, or a point detector's centre map."""

    scan: Callable  # (photo, should_stop) -> ScanResult
    classes: list[str]
    channels: int
    window: tuple[int, int]
    spacing: float  # default least distance between detections and match radius, in the photo's pixels
    default_threshold: float = 0.5
    radius: float | None = None  # default match radius when not ``spacing``
    names_classes: bool = True  # False: a point detector's one class (per-class errors need `verify`)
    namer: Callable | None = None  # (detections, result) -> detections named (a point detector that names classes)
    labels: list[str] | None = None  # the classes ``namer`` gives


def _scanner(run_dir, config: ScanConfig, predictor: Predictor | None) -> Scanner:
    from cnnkit.run import RunFolder

    if predictor is None and RunFolder(run_dir).read_record().finds_points:
        from cnnkit.scan.points import load_point_detector, name_detections, point_scan

        net, record = load_point_detector(run_dir)
        cell = record.points.cell
        namer = None
        if record.names_objects:
            def namer(detections, result):
                return name_detections(detections, result, record.classes, config.scale)
        return Scanner(scan=lambda photo, should_stop=None: point_scan(net, record, photo, config.stride, config.mode,
                                                                       config.tile, config.precision, should_stop),
                       classes=[record.points.settings.label], channels=3, window=(cell, cell), spacing=2.0 * cell,
                       default_threshold=record.points.settings.detection_threshold, radius=4.0 * cell,
                       names_classes=False, namer=namer, labels=list(record.classes) if namer else None)
    require(RunFolder(run_dir).read_record().kind, "scan", run_dir)
    predictor = predictor or Predictor.load(run_dir, backend="torch")
    if not isinstance(predictor, NetworkPredictor):
        raise ConfigError(f"{run_dir} is a baseline run; scanning needs a CNN patch classifier (patch_cnn is exact).")
    pre = predictor.preprocessing
    return Scanner(scan=lambda photo, should_stop=None: scan(predictor.model, pre, photo, config.stride, config.mode,
                                                             config.tile, config.precision, should_stop),
                   classes=predictor.classes, channels=pre.channels, window=tuple(pre.image_size),
                   spacing=min(pre.image_size) / 2.0)


def warn_unknown_classes(report: dict, dots, labels: list[str]) -> None:
    """One line naming the dots' classes this scan never names (a typo, or a class the run never learned): their rows
    count no detection, and their dots count in the class-agnostic line."""
    unknown = sorted(name for name, r in report.items() if not r["known_class"] and r["dots"])
    if unknown:
        log.warning("Dots file %s names class(es) this scan never names: %s (it names %s); their per-class rows find "
                    "nothing, and their dots count in \"all objects\". Rename them in the file if they are the same "
                    "objects.", dots, ", ".join(unknown), ", ".join(labels))


def _scan_folder(out: str | Path) -> Path:
    """``out``, once it is known to be new, empty or an earlier scan's folder (which the scan replaces)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "scan.json").exists())):
        raise OutputError(f"{out} exists and is not a scan's output folder (it has no scan.json); choose a new "
                          "`out` so that nothing in it is replaced.")
    return out


@with_options(ScanConfig)
def scan_photo(run_dir: str | Path, photo_path: str | Path, out: str | Path, config: ScanConfig | None = None, *,
               dots: str | Path | None = None, predictor: Predictor | None = None,
               should_stop: Callable[[], bool] | None = None) -> dict:
    """Scan one photograph with a run's patch classifier (or point detector) and write heatmaps, counts, detections
    (and the comparison with ``dots``) into ``out`` (under the run's lock when inside it). ``scale`` resizes the photo
    first to the patches' object size; outputs are in the original photo's pixels. ``predictor``: the run's, already
    loaded; ``should_stop``: asked between tiles, a yes stops the scan (``ScanStopped``): a server's deadline."""
    config = config or ScanConfig()
    scanner = _scanner(run_dir, config, predictor)
    out = _scan_folder(out)
    classes = scanner.classes
    _check_ignored(config.ignore, classes, run_dir)
    ignore = config.ignore if config.ignore is not None else background_classes(classes)
    expected_dots = _expected_dots(dots, photo_path)  # a broken dots file fails before the scan, not after
    verifier = load_verifier(config.verify) if config.verify else None  # so does a verifying run that cannot verify
    photo = load_photo(photo_path, scanner.channels, config.scale, config.region,
                       grayscale_ok=not scanner.names_classes)
    expected_dots, outside = in_region(expected_dots, config.region)
    if config.choose_thresholds and expected_dots == []:
        raise ConfigError(f"No dot of {dots} lies in `region` {config.region}: `choose_thresholds` has nothing to "
                          "choose on; the run's thresholds are kept.")
    result = scanner.scan(photo, should_stop)
    min_distance = config.min_distance if config.min_distance is not None else scanner.spacing / config.scale
    radius = config.radius if config.radius is not None else (scanner.radius or scanner.spacing) / config.scale
    threshold, min_distance = _thresholds(run_dir, config, result, scanner, expected_dots,
                                          (min_distance, radius, ignore), dots)
    detections = detect(result, classes, threshold, min_distance, ignore, config.scale)
    if scanner.namer is not None:  # a point detector that names each detection's class
        detections = scanner.namer(detections, result)
    named_by_run = scanner.labels if verifier is None or config.verify_keeps_class else None  # else the verifier's
    detections, verification, labels = _verified(config, verifier, photo_path, photo, scanner.channels, detections,
                                                 named_by_run or classes)
    if verification is not None and not scanner.names_classes and not config.verify_keeps_class:
        labels = [x for x in labels if x not in classes]  # the verifier named every kept detection
    named = scanner.names_classes or scanner.namer is not None or (verification is not None
                                                                    and not config.verify_keeps_class)
    by_class = expected_dots is not None and named
    report = compare_with_dots(detections, expected_dots, labels, radius) if by_class else None
    if report:
        warn_unknown_classes(report, dots, labels)
    overall = overall_with_dots(detections, expected_dots, radius) if expected_dots is not None else None
    settings = {"run": str(Path(run_dir).resolve()), "photo": str(Path(photo_path).resolve()),
                "photo_size": list(photo.shape[:2]), "scale": config.scale, "method": result.method,
                "window": list(scanner.window),
                "stride": result.stride, "exact": result.exact, "precision": result.precision, "threshold": threshold,
                "min_distance": min_distance, "ignore": list(ignore), "seconds": round(result.seconds, 3),
                "grid": list(result.probabilities.shape[1:]), "peak_memory_mb": round(peak_memory_mb(), 1),
                "verify": None if verification is None else vars(verification),
                "region": None if config.region is None else str(config.region), "dots_outside_region": outside}
    counts = {}

    def fill(folder: Path) -> None:
        counts.update(write_outputs(folder, photo, result, classes, detections, ignore, radius, config.scale,
                                    settings, report, labels, offset=(config.region or Region()).top_left))
        if overall is not None:
            write_json(folder / "dots-overall.json", overall)

    with locked_if_inside(run_dir, out):  # the default, RUN/scan-PHOTO
        replace_folder(out, fill)
    return {**settings, "counts": counts, "detections": len(detections), "dots": report, "dots_overall": overall}
