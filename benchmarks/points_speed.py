"""A point detector's centre map of a whole photograph: median seconds in float32 and in bfloat16 autocast, how far
bfloat16 and the tiles move the probabilities, and the detections at the run's threshold in each (issue 15).

    python benchmarks/points_speed.py RUN PHOTO
    # RUN: a `cnnkit points` run, e.g. one made by benchmarks/sealion_points.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from cnnkit.scan.points import centre_map, load_point_detector
from cnnkit.scan.scan import load_photo


def peaks(heat: np.ndarray, threshold: float) -> int:
    import torch.nn.functional as F

    x = torch.from_numpy(heat)[None, None]
    top = F.max_pool2d(x, 5, 1, 2)[0, 0]
    return int(((x[0, 0] == top) & (x[0, 0] >= threshold)).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("photo")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    net, record = load_point_detector(args.run)
    photo = load_photo(args.photo, 3)
    threshold = record.points.settings.threshold
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
    print(f"| one pass, float32 | - | - | {peaks(whole, threshold)} |")
    print(f"| tiles, float32 | {times['float32']:.2f} | {np.abs(maps['float32'] - whole).max():.4f} "
          f"| {peaks(maps['float32'], threshold)} |")
    print(f"| tiles, bfloat16 | {times['bfloat16']:.2f} | {np.abs(maps['bfloat16'] - whole).max():.4f} "
          f"| {peaks(maps['bfloat16'], threshold)} |")


if __name__ == "__main__":
    main()
