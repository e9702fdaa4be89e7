"""The light predictor: a run's ONNX export (``cnnkit export``) run by ONNX Runtime. Needs onnxruntime, numpy and
Pillow only; torch is never imported, so one image is classified in a fraction of a second from a cold start.

The exported graph takes the decoded images as they are, (batch, height, width, channels) uint8, and does the rest
of the preprocessing itself; its outputs are ``probabilities`` and ``features`` (the layer before the classifier).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from cnnkit.errors import ConfigError, RunError
from cnnkit.inference.base import Predictor, check_tta
from cnnkit.run import RunFolder, RunRecord

log = logging.getLogger("cnnkit")
INSTALL = "pip install 'cnnkit[onnx]'"


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def usable_export(run: RunFolder, required: bool) -> Path | None:
    """The export's model file when it exists, was made from the run's current weights and onnxruntime is
    installed; else None (``required``: ConfigError or RunError saying why and what to do)."""
    info = run.read_export()
    if info is None:
        if required:
            raise RunError(f"{run.path} has no export: run `cnnkit export {run.path}` first, or use `backend` torch.")
        return None
    if not _has_onnxruntime():
        if required:
            raise ConfigError(f"The onnx backend needs onnxruntime: {INSTALL}")
        log.info("%s has an export, but onnxruntime is not installed (%s): using torch.", run.path, INSTALL)
        return None
    name = str(info.get("model", ""))
    model = run.export_dir / Path(name).name  # never outside export/, whatever export.json says
    if info.get("weights_sha256") != run.weights_digest() or not model.is_file():
        message = (f"The export of {run.path} was not made from its current weights (trained or resumed since?): "
                   f"run `cnnkit export {run.path}` again")
        if required:
            raise RunError(message + ".")
        log.warning("%s; predicting with torch meanwhile.", message)
        return None
    return model


def session_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")  # never TensorRT: it builds engines for minutes


def open_session(path: str | Path, threads: int | None = None, providers: list[str] | None = None):
    """An ONNX Runtime session: CUDA with onnxruntime-gpu, else the CPU (or the ``providers`` given)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or session_threads()
    options.log_severity_level = 3
    # no busy-waiting between operators: the decoding threads of streaming prediction get those cycles
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    available = ort.get_available_providers()
    chosen = [p for p in (providers or PROVIDERS) if p in available] or ["CPUExecutionProvider"]
    try:
        return ort.InferenceSession(str(path), options, providers=chosen)
    except Exception as e:  # onnxruntime raises its own exception types, all subclasses of Exception
        raise RunError(f"Cannot load {path}: {str(e).splitlines()[0]} (export it again).") from None


class OnnxPredictor(Predictor):
    """The exported network in ONNX Runtime behind the ``Predictor`` interface."""

    has_latent_space = True
    backend = "onnx"

    def __init__(self, model_path: str | Path, record: RunRecord, run_dir: Path | None = None,
                 parameters: int = 0):
        threshold = record.decision.threshold if record.decision else None
        super().__init__(list(record.classes), record.preprocessing, run_dir, threshold, record.augment,
                         record.multi_label, record.thresholds)
        self.model_path = Path(model_path)
        self.session = open_session(self.model_path)
        self.parameters = parameters

    @classmethod
    def from_record(cls, run: RunFolder, record: RunRecord, model_path: Path) -> OnnxPredictor:
        info = run.read_export() or {}
        return cls(model_path, record, run.path, int(info.get("parameters", 0)))

    def _run(self, output: str, images: np.ndarray, batch_size: int) -> np.ndarray:
        parts = [self.session.run([output], {"images": np.ascontiguousarray(images[i:i + batch_size])})[0]
                 for i in range(0, len(images), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def predict_arrays(self, images: np.ndarray, batch_size: int = 128, tta: int = 1) -> np.ndarray:
        check_tta(tta)
        if tta != 1:
            raise ConfigError("Test-time augmentation runs the run's training transforms in torch: use `backend` "
                              "torch with `tta`.")
        if not len(images):
            return np.zeros((0, len(self.classes)), np.float32)
        return self._run("probabilities", images, batch_size)

    def embed_arrays(self, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
        return self._run("features", images, batch_size)

    @property
    def num_parameters(self) -> int:
        return self.parameters
