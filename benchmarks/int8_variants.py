"""int8 quantization variants of one exported run, side by side: throughput against float32 and test accuracy
(issue 16).

    python benchmarks/int8_variants.py RUN      # RUN: exported with `cnnkit export`, with a test split
    # e.g. the run benchmarks/inference.py trains: /tmp/cnnkit-inference2/run

Data: RUN, an exported run with a test split, which benchmarks/inference.py makes from hymenoptera (not in this
repository: https://download.pytorch.org/tutorial/hymenoptera_data.zip). Without it the script says so in one line
and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from _data import missing_made

from cnnkit.data.prepare import load_samples
from cnnkit.inference.onnx import open_session
from cnnkit.run import RunFolder


def split(run: RunFolder, name: str, limit: int | None = None):
    manifest, record = run.read_split(), run.read_record()
    samples = manifest.splits[name][:limit]
    arrays = load_samples(run.data_root(manifest), samples, list(record.classes), record.preprocessing)
    return arrays.images, arrays.labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if missing_made(args.run, "python benchmarks/inference.py (its OUT/run), which needs hymenoptera",
                    "export/model.onnx"):
        return
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    logging.getLogger().setLevel(logging.ERROR)
    run = RunFolder(args.run)
    calibration, _ = split(run, "train", 200)
    test, labels = split(run, "test")
    work = Path(tempfile.mkdtemp())
    prepared = work / "prepared.onnx"
    quant_pre_process(str(run.export_dir / "model.onnx"), str(prepared), skip_symbolic_shape=True)
    nodes = onnx.load(str(prepared)).graph.node
    first_and_last = [n.name for n in nodes if n.op_type == "Conv"][:1] + [
        n.name for n in nodes if n.op_type in ("Gemm", "MatMul")]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.starts = iter(range(0, len(calibration), 16))

        def get_next(self):
            start = next(self.starts, None)
            return None if start is None else {"images": calibration[start:start + 16]}

    base = dict(quant_format=QuantFormat.QDQ, per_channel=True, nodes_to_exclude=first_and_last)
    variants = {"float32": None,
                "int8, every layer (QDQ, per channel)": {**base, "nodes_to_exclude": []},
                "int8, first conv and classifier in float (cnnkit's)": base,
                "  same, weights per tensor": {**base, "per_channel": False},
                "  same, QOperator format": {**base, "quant_format": QuantFormat.QOperator},
                "  same, reduce_range": {**base, "reduce_range": True}}
    sessions = {}
    for name, options in variants.items():
        path = run.export_dir / "model.onnx"
        if options is not None:
            path = work / f"{len(sessions)}.onnx"
            quantize_static(str(prepared), str(path), Reader(), activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, op_types_to_quantize=["Conv", "MatMul", "Gemm"], **options)
        sessions[name] = open_session(path, providers=["CPUExecutionProvider"])
    batch = test[:64]
    times = {name: [] for name in sessions}
    for _ in range(args.repeats):  # interleaved, medians: a shared machine slows all alike
        for name, session in sessions.items():
            start = time.perf_counter()
            for i in range(0, len(batch), 16):
                session.run(["probabilities"], {"images": batch[i:i + 16]})
            times[name].append(time.perf_counter() - start)
    reference = len(batch) / statistics.median(times["float32"])
    print(f"{args.run}: {len(labels)} test images")
    print("| model | images/s | x float32 | test accuracy |")
    print("|---|---|---|---|")
    for name, session in sessions.items():
        rate = len(batch) / statistics.median(times[name])
        predicted = np.concatenate([session.run(["probabilities"], {"images": test[i:i + 16]})[0]
                                    for i in range(0, len(test), 16)]).argmax(1)
        print(f"| {name} | {rate:.0f} | {rate / reference:.2f} | {float((predicted == labels).mean()):.4f} |")


if __name__ == "__main__":
    main()
