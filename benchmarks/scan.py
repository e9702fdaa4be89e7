"""Scanning a whole aerial photograph: the fully convolutional pass against the sliding-window loop.

On ../shared/data/sealions: a patch_cnn trained on the 96x96 patches scans scenes/5.jpg (4992x3328) at output
stride 16 both ways (each scan in its own process, so peak memory is its own); FLOPs of both are counted with
torch's FlopCounterMode; counts are compared with the experts' dots. Then the same on the synthetic aerial set.

    python benchmarks/scan.py --sealions ../shared/data/sealions --out /tmp/cnnkit-scan

Data, not in this repository: the sea-lion data, cut from NOAA Fisheries' Steller sea lion count (Kaggle, 2017:
https://www.kaggle.com/c/noaa-fisheries-steller-sea-lion-population-count) by a public demo of patch-wise CNNs:
96x96 patches/{train,val,test}/CLASS/ and scenes/5.jpg with its dots scenes/5-dots.csv, by default in
../shared/data/sealions (see ../shared/data/README.md). Without it the script says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _data import SEALIONS
from cnnkit import Predictor, TrainConfig, evaluate, export_dataset, train
from cnnkit.scan.dense import dense_network
from cnnkit.scan.windows import dense_scan, grid_size, load_photo

CNNKIT = [sys.executable, "-m", "cnnkit.cli", "-q"]


def run_scan(run: Path, photo: Path, out: Path, method: str, stride: int, dots: Path, extra=()) -> dict:
    subprocess.run([*CNNKIT, "scan", str(run), str(photo), "--out", str(out), "--mode", method, "--stride",
                    str(stride), "--dots", str(dots), *extra], check=True, stdout=subprocess.DEVNULL)
    return {**json.loads((out / "scan.json").read_text()), "dots": json.loads((out / "dots.json").read_text())}


def flops(run: Path, photo_path: Path, stride: int) -> tuple[float, float]:
    """FLOPs of the dense scan of the photo, and of classifying every window alone."""
    from torch.utils.flop_counter import FlopCounterMode

    predictor = Predictor.load(run)
    photo = load_photo(photo_path, 3)
    dense = dense_network(predictor.model, 3, predictor.preprocessing.image_size, stride)
    with FlopCounterMode(display=False) as counter:
        dense_scan(dense, photo, predictor.preprocessing)
    dense_flops = counter.get_total_flops()
    window = predictor.preprocessing.image_size
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        predictor.model(torch.zeros(1, 3, *window))
    windows = grid_size(photo.shape[0], window[0], stride) * grid_size(photo.shape[1], window[1], stride)
    return float(dense_flops), float(counter.get_total_flops() * windows)


def count_table(report: dict) -> str:
    rows = ["| class | detected | experts' dots | error | precision | recall |", "|---|---|---|---|---|---|"]
    for name, r in report.items():
        p = "n/a" if r["precision"] is None else f"{r['precision']:.2f}"
        rc = "n/a" if r["recall"] is None else f"{r['recall']:.2f}"
        rows.append(f"| {name} | {r['detected']} | {r['dots']} | {r['count_error']:+d} | {p} | {rc} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sealions", type=Path, default=SEALIONS.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-scan"))
    parser.add_argument("--stride", type=int, default=16)
    args = parser.parse_args()
    if SEALIONS.missing(args.sealions, "--sealions"):
        return
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"date {time.strftime('%Y-%m-%d')}\n")

    run = args.out / "sealions-run"
    config = TrainConfig(model="patch_cnn", model_options={"filters": (16, 32, 64)}, image_size=(96, 96), epochs=40,
                         augment="flip=hv,rotate=180", early_stopping=15)
    trained = train(args.sealions / "patches", run, config, progress=False)
    test = evaluate(run, report=False).metrics
    print(f"patch_cnn (filters 16,32,64) on sealions patches 96x96: test accuracy "
          f"{test['accuracy']:.4f} (n={test['n']}), trained in {trained.result.train_seconds:.0f} s\n")
    photo, dots = args.sealions / "scenes" / "5.jpg", args.sealions / "scenes" / "5-dots.csv"
    scans = {m: run_scan(run, photo, args.out / f"scan-{m}", m, args.stride, dots, ("--min-distance", "40"))
             for m in ("dense", "sliding")}
    dense_flops, sliding_flops = flops(run, photo, args.stride)
    speedup = scans["sliding"]["seconds"] / scans["dense"]["seconds"]
    same = np.abs(np.load(args.out / "scan-dense" / "heatmap_pups.npy")
                  - np.load(args.out / "scan-sliding" / "heatmap_pups.npy")).max()
    print(f"| scan of 5.jpg (4992x3328), windows 96x96 every {args.stride} px | wall time (s) | peak memory (MB) | "
          "GFLOPs |")
    print("|---|---|---|---|")
    for m, f in (("dense", dense_flops), ("sliding", sliding_flops)):
        print(f"| {m} | {scans[m]['seconds']:.1f} | {scans[m]['peak_memory_mb']:.0f} | {f / 1e9:.0f} |")
    ratio = sliding_flops / dense_flops
    print(f"\nFLOP ratio {ratio:.1f}x; measured speed-up {speedup:.1f}x = {speedup / ratio:.0%} of the FLOP ratio; "
          f"largest difference between the two heatmaps (pups): {same:.2e}; grid {scans['dense']['grid']}\n")
    print("Counts on 5.jpg against 5-dots.csv (dense scan, threshold 0.5, min distance 40 px, match radius 48 px):\n")
    print(count_table(scans["dense"]["dots"]))

    aerial = args.out / "aerial"
    export_dataset("aerial", aerial, seed=1, size=60)
    aerial_run = args.out / "aerial-run"
    train(aerial / "patches", aerial_run, TrainConfig(model="patch_cnn", epochs=25, augment="flip=hv,rotate=180"),
          progress=False)
    totals: dict[str, dict] = {}
    for k in range(4):
        scene = aerial / "scenes" / f"scene_{k}.png"
        report = run_scan(aerial_run, scene, args.out / f"aerial-{k}", "dense", 4,
                          aerial / "scenes" / f"scene_{k}-dots.csv")["dots"]
        for name, r in report.items():
            t = totals.setdefault(name, {"detected": 0, "dots": 0, "abs_error": 0, "matched": 0})
            t["detected"] += r["detected"]
            t["dots"] += r["dots"]
            t["abs_error"] += abs(r["count_error"])
            t["matched"] += r["matched"]
    print("\nSynthetic aerial set (`cnnkit datasets export aerial`, seed 1), 4 scenes of 256x256, patch_cnn on its "
          "24x24 patches, dense scan at stride 4:\n")
    print("| class | detected | dots | sum of per-scene absolute count errors | recall |")
    print("|---|---|---|---|---|")
    for name, t in totals.items():
        print(f"| {name} | {t['detected']} | {t['dots']} | {t['abs_error']} | {t['matched'] / max(t['dots'], 1):.2f} |")
    (args.out / "results.json").write_text(json.dumps({"scans": scans, "flops": [dense_flops, sliding_flops],
                                                       "aerial": totals}, indent=2, default=str))


if __name__ == "__main__":
    main()
