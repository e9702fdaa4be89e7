"""``cnnkit export RUN``: write ``RUN/export/`` (model.onnx, optionally model.int8.onnx, and export.json), check the
export against the torch network on the run's own images, and for int8 measure the test accuracy it costs."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnkit._io import replace_folder, sha256_file, write_json
from cnnkit._version import __version__
from cnnkit.config.commands import ExportConfig
from cnnkit.errors import CnnkitError, ConfigError, ModelError
from cnnkit.export.graph import INPUT, OPSET, OUTPUTS, write_onnx
from cnnkit.inference.base import decide, decide_labels
from cnnkit.options import with_options
from cnnkit.run import RunFolder, RunRecord
from cnnkit.run.lock import locked
from cnnkit.run.tasks import require

log = logging.getLogger("cnnkit")
MAX_DIFFERENCE = 1e-4  # largest probability difference between the export and torch that is accepted
CHECK_IMAGES = 32


@dataclass
class ExportResult:
    path: Path  # the model the run's predictor uses
    max_difference: float  # largest |probability| difference from torch on the check images
    check_images: str  # what they were
    seconds: float
    int8: dict = field(default_factory=dict)  # accuracies, the int8 model's difference, whether it is used


def _split_images(run: RunFolder, record: RunRecord, name: str, limit: int | None = None):
    """(images, labels) of one of the run's splits, or None when the run has none or its data is gone."""
    try:
        manifest = run.read_split()
    except CnnkitError:  # a run without a split file: checked on synthetic images instead
        return None
    samples = manifest.splits.get(name, [])
    if not samples:
        return None
    if limit is not None and len(samples) > limit:
        picked = np.random.default_rng(0).choice(len(samples), limit, replace=False)
        samples = [samples[i] for i in sorted(picked)]
    from cnnkit.data.prepare import load_samples

    try:
        root = run.existing_data_root(manifest, "")
    except CnnkitError:
        return None
    arrays = load_samples(root, samples, list(record.classes), record.preprocessing, skip_bad=True,
                          multi_label=record.multi_label)
    return arrays.images, arrays.labels


def _check_images(run: RunFolder, record: RunRecord) -> tuple[np.ndarray, str]:
    for name in ("test", "val", "train"):
        found = _split_images(run, record, name, CHECK_IMAGES)
        if found is not None and len(found[0]):
            return found[0], f"{len(found[0])} images of the run's {name} split"
    h, w = record.preprocessing.image_size
    images = np.random.default_rng(0).integers(0, 256, (8, h, w, record.preprocessing.channels), dtype=np.uint8)
    return images, "8 random images (the run's data folder is not readable)"


def _onnx_probabilities(path: Path, images: np.ndarray) -> np.ndarray:
    from cnnkit.inference.onnx import open_session

    session = open_session(path, providers=["CPUExecutionProvider"])  # compared with torch on the CPU
    return np.concatenate([session.run([OUTPUTS[0]], {INPUT: images[i:i + 16]})[0]
                           for i in range(0, len(images), 16)])


def _check_installed() -> None:
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"Exporting needs {', '.join(missing)}: pip install 'cnnkit[onnx]'")


@with_options(ExportConfig)
def export_run(run_dir: str | Path, config: ExportConfig | None = None) -> ExportResult:
    """Export the run's network; ModelError when the export differs from torch by more than ``MAX_DIFFERENCE``."""
    _check_installed()
    config = config or ExportConfig()
    run = RunFolder(run_dir)
    with locked(run.path):  # no training can replace the weights between reading them and recording their digest
        return _export(run, config)


def _export(run: RunFolder, config: ExportConfig) -> ExportResult:
    from cnnkit.inference.network import NetworkPredictor

    record = run.read_record()
    require(record.kind, "export", run.path)
    if record.model.is_baseline:
        raise ConfigError(f"{run.path} is a baseline run; only networks are exported.")
    start = time.perf_counter()
    digest = run.weights_digest()
    torch_predictor = NetworkPredictor.from_record(run, record)
    images, described = _check_images(run, record)
    expected = torch_predictor.predict_arrays(images)
    result = ExportResult(run.export_dir / "model.onnx", 0.0, described, 0.0)

    def fill(folder: Path) -> None:
        write_onnx(torch_predictor.model, record.preprocessing, folder / "model.onnx", record.multi_label)
        result.max_difference = float(np.abs(_onnx_probabilities(folder / "model.onnx", images) - expected).max())
        if result.max_difference > MAX_DIFFERENCE:
            raise ModelError(f"The ONNX export of {run.path} differs from the torch network by "
                             f"{result.max_difference:.2g} on {described} (more than {MAX_DIFFERENCE}); not kept.")
        model = "model.onnx"
        if config.quantize == "int8":
            result.int8 = _int8(run, record, folder, torch_predictor, config)
            model = "model.int8.onnx" if result.int8["used"] else model
        result.path = run.export_dir / model
        files = sorted(p.name for p in folder.glob("*.onnx"))
        write_json(folder / "export.json", {
            "format": "onnx", "model": model, "opset": OPSET, "cnnkit_version": __version__,
            "weights_sha256": digest, "sha256": {name: sha256_file(folder / name) for name in files},
            "parameters": torch_predictor.num_parameters,
            "input": {"name": INPUT, "dtype": "uint8", "shape": ["batch", *record.preprocessing.image_size,
                                                                 record.preprocessing.channels]},
            "outputs": list(OUTPUTS), "check": {"images": described, "max_difference": result.max_difference},
            "int8": result.int8 or None})

    replace_folder(run.export_dir, fill)
    result.seconds = time.perf_counter() - start
    return result


def _accuracy(record: RunRecord, probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The share of right decisions, with the decision ``predict`` applies (multi-label: per image and class)."""
    if record.multi_label:
        return float((decide_labels(probabilities, record.thresholds) == (labels > 0.5)).mean())
    threshold = record.decision.threshold if record.decision else None
    return float((decide(probabilities, threshold) == labels).mean())


def _int8(run: RunFolder, record: RunRecord, folder: Path, torch_predictor, config: ExportConfig) -> dict:
    """Quantize with the run's training images and compare test accuracy, float against int8."""
    from cnnkit.export.quantize import quantize_int8

    calibration = _split_images(run, record, "train", config.calibration)
    if calibration is None or not len(calibration[0]):
        raise ConfigError(f"int8 quantization calibrates on the run's training images, and {run.path}'s data "
                          "folder cannot be read; export without `quantize`, or restore the data.")
    quantize_int8(folder / "model.onnx", folder / "model.int8.onnx", calibration[0])
    split, test = next(((name, found) for name in ("test", "val")
                        if (found := _split_images(run, record, name)) is not None and len(found[0])), (None, None))
    if test is None:
        raise ConfigError(f"{run.path} has neither a test nor a validation split to measure what int8 costs.")
    if split == "val":
        log.warning("%s has no test split: int8 is scored on the validation split, which chose the run's weights "
                    "(a solved head may even have been fitted on it), so both accuracies are optimistic.", run.path)
    images, labels = test
    float_acc = _accuracy(record, _onnx_probabilities(folder / "model.onnx", images), labels)
    int8_acc = _accuracy(record, _onnx_probabilities(folder / "model.int8.onnx", images), labels)
    loss = 100 * (float_acc - int8_acc)
    used = loss <= config.tolerance
    if not used:
        log.warning("int8 costs %.1f points of accuracy (more than `tolerance` %.1f): model.onnx stays in use.",
                    loss, config.tolerance)
    return {"images": len(labels), "split": split,
            "accuracy_float": float_acc, "accuracy_int8": int8_acc,
            "points_lost": loss, "tolerance": config.tolerance, "used": used}
