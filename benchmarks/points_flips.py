"""Would averaging the centre map over mirror images steady the point detector? The runs of ``sealion_points.py``,
each held-out half scanned as it is and mirrored left-right, top-bottom and both (the maps mirrored back and
averaged), then the same threshold sweep and matching as ``sealion_points.py``; and the runs' plain maps averaged
(two seeds: an ensemble).

    python benchmarks/points_flips.py --data ../shared/data/sealions --runs /tmp/cnnkit-points

Exploratory: not a cnnkit option. Both halves are whole multiples of the 8 px cell, so a mirrored map's cells are
the photo's cells.

Data, not in this repository: the sea-lion data, cut from NOAA Fisheries' Steller sea lion count (Kaggle, 2017:
https://www.kaggle.com/c/noaa-fisheries-steller-sea-lion-population-count) by a public demo of patch-wise CNNs:
96x96 patches/{train,val,test}/CLASS/ and scenes/5.jpg with its dots scenes/5-dots.csv, by default in
../shared/data/sealions (see ../shared/data/README.md). Without it the script says so in one line and exits 0.
--runs is the --out of benchmarks/sealion_points.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from _data import SEALIONS, missing_made

from cnnkit.config.parse import parse_region
from cnnkit.data.dots import read_dots
from cnnkit.scan.detect import detect, overall_with_dots
from cnnkit.scan.points import centre_map, load_point_detector
from cnnkit.scan.windows import ScanResult, load_photo

HALVES = {"top": "0:1600", "bottom": "1600:"}
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)


def sweep(heat: np.ndarray, dots: list, cell: int) -> list[str]:
    result = ScanResult(heat[None], cell, (cell, cell), 0.0, False, "points")
    cells = []
    for t in THRESHOLDS:
        o = overall_with_dots(detect(result, ["object"], t, 2.0 * cell, ()), dots, 48.0)
        p = "n/a" if o["precision"] is None else f"{o['precision']:.2f}"
        cells.append(f"{o['detected']} / {o['dots']}, {p} / {o['recall']:.2f}")
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SEALIONS.default)
    parser.add_argument("--runs", type=Path, default=Path("/tmp/cnnkit-points"))
    args = parser.parse_args()
    if SEALIONS.missing(args.data) or missing_made(
            args.runs, "python benchmarks/sealion_points.py --seeds 0 1 (its --out)", "fold-top"):
        return
    photo_path, dots = args.data / "scenes" / "5.jpg", read_dots(args.data / "scenes" / "5-dots.csv")
    print("| fold | run | map | " + " | ".join(str(t) for t in THRESHOLDS) + " |\n|---|---|---|" + "---|" * 5)
    for train, test in (("top", "bottom"), ("bottom", "top")):
        region = parse_region(HALVES[test])
        photo = load_photo(photo_path, 3, region=region)
        inside = region.local(dots)[1]
        plain = []
        for run in sorted((args.runs / f"fold-{train}").glob("points*/run")):
            net, record = load_point_detector(run)
            cell = record.points.cell
            with torch.no_grad():
                maps = [centre_map(net, record, np.ascontiguousarray(photo[::a, ::b]), progress=False)[::a, ::b]
                        for a, b in ((1, 1), (1, -1), (-1, 1), (-1, -1))]
            plain.append(maps[0])
            for name, heat in (("plain", maps[0]), ("mirrors averaged", np.mean(maps, axis=0))):
                print(f"| learn {train} | {run.parent.name} | {name} | " + " | ".join(sweep(heat, inside, cell)) + " |",
                      flush=True)
        if len(plain) > 1:  # the runs of several seeds, their plain maps averaged
            print(f"| learn {train} | all {len(plain)} runs | averaged | " + " | ".join(sweep(np.mean(plain, axis=0),
                                                                                       inside, 8)) + " |")


if __name__ == "__main__":
    main()
