"""Which predictor a run gets (``Predictor.load``): its network in PyTorch, its ONNX export run by ONNX Runtime, or a
classical baseline. Kept apart from the interface (``base``), which the predictors subclass: the interface imports
none of them, and the torch-based ones load only when chosen."""

from __future__ import annotations

import logging
from pathlib import Path

from cnnkit.config.commands import BACKENDS
from cnnkit.errors import ConfigError, check_choice
from cnnkit.inference.base import Predictor
from cnnkit.run import RunFolder

log = logging.getLogger("cnnkit")


def load_predictor(run_dir: str | Path, backend: str = "auto") -> Predictor:
    """The run's predictor. ``backend`` "torch": its network; "onnx": its export (``cnnkit export``) run by ONNX
    Runtime, without importing torch; "auto": the export when it exists and was made from the current weights, else
    the network."""
    check_choice("backend", backend, BACKENDS)
    run = RunFolder(run_dir)
    record = run.read_record()
    note = run.status_note(record)
    if note:
        log.warning(note)
    if record.model.is_baseline:
        if backend == "onnx":
            raise ConfigError(f"{run.path} is a baseline run: it has no ONNX export. Use `backend` torch.")
        from cnnkit.inference.network import BaselinePredictor

        return BaselinePredictor.from_record(run, record)
    if backend != "torch":
        from cnnkit.inference.onnx import OnnxPredictor, usable_export

        export = usable_export(run, required=backend == "onnx")
        if export is not None:
            return OnnxPredictor.from_record(run, record, export)
    from cnnkit.inference.network import NetworkPredictor

    return NetworkPredictor.from_record(run, record)
