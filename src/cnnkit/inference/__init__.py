"""Load a run folder and predict. ``Predictor.load(run)`` gives the run's predictor: its network in PyTorch, its
ONNX export run by ONNX Runtime (no torch import), or a classical baseline; all share one interface, so predict,
evaluate and compare read any kind. The torch-based predictors load only when asked for."""

from cnnkit.inference.base import Prediction, Predictor, check_threshold, decide
from cnnkit.inference.load import load_predictor

Predictor.loader = staticmethod(load_predictor)  # Predictor.load's choice of backend (see inference.base.Predictor)

__all__ = ["BaselinePredictor", "NetworkPredictor", "OnnxPredictor", "Prediction", "Predictor", "check_threshold",
           "decide"]


def __getattr__(name: str):
    if name in ("NetworkPredictor", "BaselinePredictor"):
        from cnnkit.inference import network

        return getattr(network, name)
    if name == "OnnxPredictor":
        from cnnkit.inference.onnx import OnnxPredictor

        return OnnxPredictor
    raise AttributeError(f"module 'cnnkit.inference' has no attribute {name!r}")
