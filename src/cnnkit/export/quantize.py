"""Static int8 quantization of an exported model with ONNX Runtime's tools: weights per channel, activations with
ranges measured on calibration images (the run's training images)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from cnnkit.errors import ModelError
from cnnkit.export.graph import INPUT, OUTPUTS


def quantize_int8(source: Path, target: Path, calibration: np.ndarray, batch_size: int = 16) -> None:
    """Write ``target``: ``source`` with int8 convolutions (QDQ format, weights per channel), activation ranges from
    ``calibration`` (N, H, W, C) uint8 images. The first convolution and the classifier stay in float: quantizing
    them too cost test accuracy on hymenoptera for no speed (benchmarks/int8_variants.py, BENCHMARKS.md)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(range(0, len(calibration), batch_size))

        def get_next(self) -> dict | None:
            start = next(self.batches, None)
            return None if start is None else {INPUT: calibration[start:start + batch_size]}

    root = logging.getLogger()  # the tools log every node at INFO through the root logger
    level = root.level
    root.setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            import onnx

            nodes = onnx.load(str(prepared)).graph.node
            convs = [n.name for n in nodes if n.op_type == "Conv"]
            keep_float = convs[:1] + [n.name for n in nodes if n.op_type in ("Gemm", "MatMul")]
            quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=["Conv", "MatMul", "Gemm"], nodes_to_exclude=keep_float,
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
                            calibration_providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's tools raise many types
            raise ModelError(f"Cannot quantize {source}: {str(e).splitlines()[0]}") from None
        finally:
            root.setLevel(level)
    if not target.exists():
        raise ModelError(f"Quantizing {source} wrote nothing; the outputs {OUTPUTS} may not be quantizable.")
