"""A whole photograph scanned densely in float32, in float32 with channels_last, and in bfloat16 autocast: median
seconds and how far bfloat16 moves the probabilities (issue 15).

    python benchmarks/scan_precision.py RUN PHOTO --stride 8
    # RUN: a patch_cnn run trained at the photo's scale, e.g. one made by benchmarks/sealion_counts.py

Data: RUN, a patch_cnn run that benchmarks/sealion_counts.py makes, and PHOTO, scenes/5.jpg of the sea-lion data
(not in this repository: cut from NOAA Fisheries' Steller sea lion count, Kaggle 2017,
https://www.kaggle.com/c/noaa-fisheries-steller-sea-lion-population-count; see ../shared/data/README.md). Without
them the script says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from _data import SEALIONS, missing_made

from cnnkit.inference import Predictor
from cnnkit.scan.dense import dense_network
from cnnkit.scan.windows import dense_scan, load_photo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("photo")
    parser.add_argument("--stride", type=int)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if missing_made(args.run, "python benchmarks/sealion_counts.py (e.g. OUT/fold-top/run2)", "config.json") \
            or SEALIONS.missing_file(args.photo, "PHOTO"):
        return
    predictor = Predictor.load(args.run, backend="torch")
    model = predictor.model.to(memory_format=torch.contiguous_format)
    photo = load_photo(args.photo, predictor.preprocessing.channels)
    dense = dense_network(model, predictor.preprocessing.channels, tuple(predictor.preprocessing.image_size),
                          args.stride)
    prep = predictor.preprocessing

    def float32():
        return dense_scan(dense, photo, prep, 512, progress=False)

    def channels_last():
        return dense_scan(dense.to(memory_format=torch.channels_last), photo, prep, 512, progress=False)

    def bfloat16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return dense_scan(dense, photo, prep, 512, progress=False)

    variants = {"float32": float32, "channels_last": channels_last, "bfloat16": bfloat16}
    reference = float32()
    times, outputs = {name: [] for name in variants}, {}
    for _ in range(args.repeats):  # interleaved: a noisy machine slows all of them alike
        for name, scan in variants.items():
            start = time.perf_counter()
            outputs[name] = scan()
            times[name].append(time.perf_counter() - start)
    print(f"photo {photo.shape[1]}x{photo.shape[0]}, {reference.shape[1] * reference.shape[2]:,} windows, "
          f"stride {dense.stride}")
    print("| scan | median s | largest probability difference | same most probable class |")
    print("|---|---|---|---|")
    for name in variants:
        diff = float(np.abs(outputs[name] - reference).max())
        same = float((outputs[name].argmax(0) == reference.argmax(0)).mean())
        print(f"| {name} | {statistics.median(times[name]):.1f} | {diff:.2e} | {same:.4f} |")


if __name__ == "__main__":
    main()
