"""A point detector's centre map of a whole photograph: median seconds in float32 and in bfloat16 autocast, how far
bfloat16 and the tiles move the probabilities, and the detections at the run's threshold in each (issue 15).

    python benchmarks/points_speed.py RUN PHOTO
    # RUN: a `cnnkit points` run, e.g. one made by benchmarks/sealion_points.py

Data: RUN, a `cnnkit points` run that benchmarks/sealion_points.py makes, and PHOTO, scenes/5.jpg of the sea-lion
data (not in this repository: cut from NOAA Fisheries' Steller sea lion count, Kaggle 2017,
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

from cnnkit.scan.points import centre_map, load_point_detector
from cnnkit.scan.windows import load_photo


def peaks(heat: np.ndarray, threshold: float, cell: int) -> int:
    """Detections as ``cnnkit scan`` makes them (its defaults for a point detector: peaks 2 cells apart)."""
    from cnnkit.scan.detect import detect
    from cnnkit.scan.windows import ScanResult

    return len(detect(ScanResult(heat[None], cell, (cell, cell), 0.0, False, "points"), ["object"], threshold,
                      2.0 * cell, ()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("photo")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if missing_made(args.run, "python benchmarks/sealion_points.py (a run folder under its --out)", "config.json") \
            or SEALIONS.missing_file(args.photo, "PHOTO"):
        return
    net, record = load_point_detector(args.run)
    photo = load_photo(args.photo, 3)
    threshold, cell = record.points.settings.threshold, record.points.cell
    maps, times = {}, {}
    for name, bf16 in (("float32", False), ("bfloat16", True)):
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                maps[name] = centre_map(net, record, photo, progress=False)
            seconds.append(time.perf_counter() - start)
        times[name] = statistics.median(seconds)
    with torch.no_grad():  # one pass over the whole photo, no tiles: what the tiles approximate
        x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255.0
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (record.preprocessing.mean, record.preprocessing.std))
        whole = torch.sigmoid(net((x - mean) / std))[0, 0].numpy()[:maps["float32"].shape[0], :maps["float32"].shape[1]]
    print(f"photo {photo.shape[1]}x{photo.shape[0]}, threshold {threshold}")
    print("| computation | median seconds | largest probability change | detections |\n|---|---|---|---|")
    print(f"| one pass, float32 | - | - | {peaks(whole, threshold, cell)} |")
    print(f"| tiles, float32 | {times['float32']:.2f} | {np.abs(maps['float32'] - whole).max():.4f} "
          f"| {peaks(maps['float32'], threshold, cell)} |")
    print(f"| tiles, bfloat16 | {times['bfloat16']:.2f} | {np.abs(maps['bfloat16'] - whole).max():.4f} "
          f"| {peaks(maps['bfloat16'], threshold, cell)} |")


if __name__ == "__main__":
    main()
