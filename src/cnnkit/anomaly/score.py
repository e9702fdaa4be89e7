"""Score images by how badly an autoencoder run reconstructs them: the per-image error against the threshold the run
chose on its validation split, and an error map whose pixels above the pixel threshold outline what is unusual.

Images stream through in batches (memory holds three, however many there are); the output folder (a PNG of the
input, the reconstruction and the error map per image, ``anomaly.json``, ``anomaly.html``) replaces an earlier one
as a whole."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cnnkit._io import replace_folder, write_bytes, write_json, write_text
from cnnkit.anomaly.figures import enlargement, error_png, image_png, unusual_mask
from cnnkit.anomaly.report import render_html
from cnnkit.config import AnomalyConfig
from cnnkit.data.files import expand_image_paths, scan_folder
from cnnkit.data.prepare import report_unreadable
from cnnkit.errors import DataError, OutputError, RunError
from cnnkit.inference.reconstruction import reconstruction_errors
from cnnkit.inference.stream import decoded_batches
from cnnkit.options import with_options
from cnnkit.progress import Progress
from cnnkit.run import RunFolder, RunRecord
from cnnkit.run.tasks import require

log = logging.getLogger("cnnkit")
MAPS = "maps"


@dataclass(frozen=True)
class AnomalyScore:
    path: str
    label: str  # the image's class folder ("" without one)
    score: float | None  # mean squared reconstruction error over pixels and channels, pixels in [0, 1]
    anomalous: bool | None  # score above the threshold
    unusual_pixels: float | None  # share of the image's pixels outlined on its error map
    files: dict[str, str] = field(default_factory=dict)  # input, reconstruction, error: PNGs relative to the folder
    error: str | None = None  # why the image could not be read


@dataclass(frozen=True)
class AnomalyResult:
    rows: list[AnomalyScore]
    summary: dict  # thresholds, compression, counts, ROC AUC: ``anomaly.json`` without the rows
    folder: Path | None = None


def autoencoder_record(run: RunFolder) -> RunRecord:
    """The run's record, once it is known to be a trained autoencoder's."""
    record = run.read_record()
    require(record.kind, "anomaly", run.path)
    if record.reconstruction is None:
        raise RunError(f"{run.path} has no anomaly thresholds: its training did not finish (status "
                       f"{record.status}). Continue it with `resume`.")
    return record


def labelled_inputs(run: RunFolder, images) -> tuple[list[Path], list[str], str]:
    """(files, their class folder or "", what they are): the run's test split when ``images`` is empty; a folder
    with class folders gives its images with their class; other folders and files have no class."""
    if not images:
        manifest = run.read_split()
        if not manifest.splits.get("test"):
            raise RunError(f"Run {run.path} has no test split; pass the images to score.")
        root = run.existing_data_root(manifest, "its test split cannot be scored")
        return ([root / p for p, _ in manifest.splits["test"]], [c for _, c in manifest.splits["test"]],
                f"the test split of {run.path}")
    paths, labels = [], []
    for item in map(Path, [images] if isinstance(images, (str, Path)) else images):
        if item.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in item.iterdir()):
            scan = scan_folder(item, min_classes=1)
            samples = [s for found in scan.samples.values() for s in found]
            paths += [scan.root / rel for rel, _ in samples]
            labels += [label for _, label in samples]
        else:
            found = expand_image_paths([item])
            paths += found
            labels += [""] * len(found)
    return paths, labels, ", ".join(map(str, [images] if isinstance(images, (str, Path)) else images))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60] or "image"


class _Scorer:
    """Reconstructs batch after batch, scores each image and, given a folder, writes its three PNGs."""

    def __init__(self, run: RunFolder, record: RunRecord, threshold: float, config: AnomalyConfig,
                 on_row: Callable[[AnomalyScore], None] | None):
        from cnnkit.inference.network import NetworkPredictor

        self.predictor = NetworkPredictor.from_record(run, record)
        self.reconstruction, self.threshold, self.config = record.reconstruction, threshold, config
        self.factor = enlargement(record.preprocessing.image_size)
        self.on_row = on_row or (lambda row: None)

    def run(self, paths: list[Path], labels: list[str], folder: Path | None) -> list[AnomalyScore]:

        rows, errors, position = [], [], 0
        with Progress(len(paths), "anomaly", enabled=None if len(paths) > 2 * self.config.batch_size else False) \
                as bar:
            for batch in decoded_batches(paths, self.predictor.preprocessing, self.config.batch_size):
                errors += [e for e in batch.errors if e]
                if not self.config.skip_bad:
                    report_unreadable(errors, skip_bad=False)
                rows += self._batch_rows(batch, labels[position:position + len(batch.paths)], position, folder)
                position += len(batch.paths)
                bar.update(len(batch.paths))
        report_unreadable(errors, skip_bad=True)
        return rows

    def _batch_rows(self, batch, labels: list[str], position: int, folder: Path | None) -> list[AnomalyScore]:

        reconstructions = self.predictor.reconstruct_arrays(batch.images, self.config.batch_size)
        scores, maps = reconstruction_errors(batch.images, reconstructions, self.reconstruction.smoothing)
        rows, k = [], 0
        for i, (path, readable) in enumerate(zip(batch.paths, batch.readable)):
            if not readable:
                continue
            files = (self._write(folder, position + i, path, batch.images[k], reconstructions[k], maps[k])
                     if folder is not None and self.config.maps else {})
            unusual = float(unusual_mask(maps[k], self.reconstruction.pixel_threshold).mean())
            row = AnomalyScore(str(path), labels[i], float(scores[k]), bool(scores[k] > self.threshold),
                               round(unusual, 6), files)
            rows.append(row)
            self.on_row(row)
            k += 1
        return rows

    def _write(self, folder: Path, index: int, path: Path, image, reconstruction, error_map) -> dict[str, str]:
        stem = f"{MAPS}/{index:05d}-{_safe(path.stem)}"
        files = {"input": f"{stem}.input.png", "reconstruction": f"{stem}.reconstruction.png",
                 "error": f"{stem}.error.png"}
        write_bytes(folder / files["input"], image_png(image, self.factor))
        write_bytes(folder / files["reconstruction"], image_png(reconstruction, self.factor))
        write_bytes(folder / files["error"], error_png(error_map, self.reconstruction.pixel_threshold, self.factor))
        return files


def seen_in_training(run: RunFolder, paths: list[Path]) -> set[str]:
    """Those of ``paths`` that are the run's own training or validation images (by path): their errors are lower
    than new images' would be."""
    manifest = run.read_split()
    root = run.data_root(manifest)
    own = {str((root / p).resolve()) for split in ("train", "val") for p, _ in manifest.splits.get(split, [])}
    return {str(p) for p in paths if str(Path(p).resolve()) in own}


def roc_auc(rows: list[AnomalyScore], normal: str | None, leave_out: set[str] = frozenset()) -> float | None:
    """ROC AUC of the scores, images of other classes against those of ``normal`` (those in ``leave_out``, the
    run's own training and validation images, left out); None when either side is missing."""
    if normal is None:
        return None
    from sklearn.metrics import roc_auc_score

    scored = [r for r in rows if r.score is not None and r.label and r.path not in leave_out]
    truth = np.array([r.label != normal for r in scored])
    if len(scored) == 0 or truth.all() or not truth.any():
        log.warning("ROC AUC needs images of the normal class %r and of others; these have %s.", normal,
                    "only others" if len(scored) and truth.all() else "no others")
        return None
    return float(roc_auc_score(truth, [r.score for r in scored]))


def _summary(run: RunFolder, record: RunRecord, rows: list[AnomalyScore], source: str, threshold: float,
             config: AnomalyConfig, seen: set[str]) -> dict:
    chosen = record.reconstruction
    scores = [r.score for r in rows]
    return {"run": str(run.path.resolve()), "model": record.model.name, "data": source, "images": len(rows),
            "anomalous": sum(bool(r.anomalous) for r in rows),
            "mean_error": float(np.mean(scores)) if scores else math.nan,
            "threshold": threshold, "threshold_source": "given" if config.anomaly_threshold is not None else
            f"the {chosen.quantile:g} quantile of the reconstruction errors of {chosen.val_images} validation images",
            "pixel_threshold": chosen.pixel_threshold, "smoothing": chosen.smoothing,
            "code_size": chosen.code_size, "pixels": chosen.pixels, "compression": round(chosen.compression, 3),
            "val_error": chosen.val_error, "normal": config.normal, "seen_in_training": len(seen),
            "roc_auc": roc_auc(rows, config.normal, seen)}


@with_options(AnomalyConfig)
def score_images(run_dir: str | Path, images=None, out: str | Path | None = None,
                 config: AnomalyConfig | None = None, on_row: Callable[[AnomalyScore], None] | None = None
                 ) -> AnomalyResult:
    """Score ``images`` (files and folders; none: the run's test split) with the autoencoder run ``run_dir``.

    Each image's score is its mean squared reconstruction error, anomalous above ``threshold`` (default the run's,
    chosen on its validation split). With ``out``, the folder gets per image its input, reconstruction and error map
    (unusual pixels outlined), with ``anomaly.json`` and ``anomaly.html``. ``normal``: with class folders, the class of
    normal images; the summary then holds the ROC AUC of the others against it. ``on_row`` sees each row as it comes.
    """
    config = config or AnomalyConfig()
    run = RunFolder(run_dir)
    record = autoencoder_record(run)
    paths, labels, source = labelled_inputs(run, images)
    if config.normal is not None and config.normal not in labels:
        raise DataError(f"`normal`={config.normal!r} is none of the images' class folders "
                        f"({', '.join(sorted(set(labels) - {''})) or 'they have none'}).")
    seen = seen_in_training(run, paths)
    if seen:
        log.warning("%d of the %d images are the run's own training or validation images: their errors are lower "
                    "than new images' would be%s.", len(seen), len(paths),
                    "; the ROC AUC leaves them out" if config.normal is not None else "")
    threshold = (config.anomaly_threshold if config.anomaly_threshold is not None
                 else record.reconstruction.image_threshold)
    scorer = _Scorer(run, record, threshold, config, on_row)
    if out is None:
        rows = scorer.run(paths, labels, None)
        return AnomalyResult(rows, _summary(run, record, rows, source, threshold, config, seen))
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "anomaly.json").exists())):
        raise OutputError(f"{out} exists and is not an anomaly output folder (it has no anomaly.json); choose a new "
                          "`out` so that nothing in it is replaced.")
    result: list[AnomalyResult] = []

    def fill(folder: Path) -> None:
        rows = scorer.run(paths, labels, folder)
        summary = _summary(run, record, rows, source, threshold, config, seen)
        write_json(folder / "anomaly.json", {**summary, "rows": [asdict(r) for r in rows]})
        write_text(folder / "anomaly.html", render_html(summary, rows))
        result.append(AnomalyResult(rows, summary, out))

    replace_folder(out, fill)
    return result[0]
