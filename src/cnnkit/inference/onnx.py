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

from cnnkit._io import sha256_file
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


def _out_of_date(run: RunFolder, info: dict, model: Path) -> str | None:
    """Why the export's model must not be used (made from other weights, missing, replaced or changed since
    ``cnnkit export`` wrote it: export.json records its SHA-256), or None."""
    again = f"run `cnnkit export {run.path}` again"
    if not run.weights_path.is_file():
        return (f"{run.weights_path} is missing, so the export of {run.path} cannot be checked against the run's "
                "weights: restore the weights file")
    if info.get("weights_sha256") != run.weights_digest():
        return f"The export of {run.path} was not made from its current weights (trained or resumed since?): {again}"
    if not model.is_file():
        return f"{model}, the model export.json names, is missing: {again}"
    recorded = info.get("sha256") if isinstance(info.get("sha256"), dict) else {}
    if recorded.get(model.name) is None:
        return f"{run.export_info_path} records no SHA-256 of {model.name} (an older export): {again}"
    if recorded[model.name] != sha256_file(model):
        return (f"{model} is not the file `cnnkit export` wrote (its SHA-256 differs from the one in export.json): "
                f"it was replaced or changed since; {again}")
    return None


def usable_export(run: RunFolder, required: bool) -> Path | None:
    """The export's model file when it exists, is the very file ``cnnkit export`` wrote from the run's current
    weights (SHA-256 of both recorded in export.json) and onnxruntime is installed; else None (``required``:
    ConfigError or RunError saying why and what to do)."""
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
    message = _out_of_date(run, info, model)
    if message:
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
        self.input_shape = tuple(int(v) for v in (*record.preprocessing.image_size, record.preprocessing.channels))
        self._check_signature()

    def _check_signature(self) -> None:
        """The graph takes the run's images, (batch, height, width, channels) uint8, and gives one probability per
        class and the features: an ONNX file of another run or shape is refused here, in one line, never by
        onnxruntime on the first batch."""
        inputs, outputs = self.session.get_inputs(), {o.name: o for o in self.session.get_outputs()}
        found = [(i.name, i.type, list(i.shape)) for i in inputs]
        takes = (len(inputs) == 1 and inputs[0].name == "images" and inputs[0].type == "tensor(uint8)"
                 and list(inputs[0].shape[1:]) == list(self.input_shape))
        width = list(outputs["probabilities"].shape)[1:] if "probabilities" in outputs else []
        gives = "features" in outputs and len(width) == 1 and (width[0] == len(self.classes)
                                                                or not isinstance(width[0], int))  # symbolic: any
        if not (takes and gives):
            h, w, c = self.input_shape
            raise RunError(f"{self.model_path} is not this run's export: it takes {found} and gives "
                           f"{sorted(outputs)}, where the run needs images (batch, {h}, {w}, {c}) uint8 in and "
                           f"probabilities of {len(self.classes)} classes and features out. Export the run again "
                           "(`cnnkit export`).")

    @classmethod
    def from_record(cls, run: RunFolder, record: RunRecord, model_path: Path) -> OnnxPredictor:
        info = run.read_export() or {}
        return cls(model_path, record, run.path, int(info.get("parameters", 0)))

    def _run(self, output: str, images: np.ndarray, batch_size: int) -> np.ndarray:
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.shape[1:] != self.input_shape:
            raise ConfigError(f"Expected images of shape (N, {', '.join(map(str, self.input_shape))}) and dtype "
                              f"uint8, as the run decodes them. Received: shape {images.shape}, dtype {images.dtype}")
        try:
            parts = [self.session.run([output], {"images": np.ascontiguousarray(images[i:i + batch_size])})[0]
                     for i in range(0, len(images), batch_size)]
        except Exception as e:  # onnxruntime's own exception types, all subclasses of Exception
            raise RunError(f"{self.model_path} failed on a batch: {str(e).splitlines()[0][:300]} (export the run "
                           "again: `cnnkit export`).") from None
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
