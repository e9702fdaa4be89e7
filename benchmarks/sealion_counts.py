"""Counting sea lions on a region the model never saw: patches from one half of scenes/5.jpg (cut at row 1600: top
27 animals, bottom 20), a patch_cnn trained on them (round 1), hard negatives mined with it on the same half and a
second training (round 2), then a scan of the other half compared with its dots; both folds. Each step is a plain
`cnnkit` command on the photo with `--region 0:1600` (top) or `--region 1600:` (bottom): what the README's sea-lion
walkthrough types.

    python benchmarks/sealion_counts.py --data ../shared/data/sealions --out /tmp/cnnkit-counts
    python benchmarks/sealion_counts.py --with-patches --stride 8   # plus patches/{train,val}; windows 8 px apart
    python benchmarks/sealion_counts.py --verify   # plus the two-stage scan: round 2 at 0.3, verified by Lite0
    python benchmarks/sealion_counts.py --verify --reuse --out DIR   # DIR's trained runs again, every scan anew
    python benchmarks/sealion_counts.py --verify --reuse --verifier-size 96 --verifier-strategy finetune --out DIR
    python benchmarks/sealion_counts.py --reuse --rounds 3 --training-scan --out DIR   # a third round of mining

``--rounds N`` trains and mines N rounds (each mining with every earlier run); ``--training-scan`` also scans each
round's run on the half it learned from: the false detections left there are what the next round mines.

With ``--verify``, each fold also trains a second run: EfficientNet-Lite0 (pretrained, the default transfer strategy)
at 144 px on 144x144 windows (1.5x the 96 px patch) around the training half's dots, random background and the hard
negatives mined with rounds 1 and 2; then round 2 scans the held-out half at threshold 0.3 (and 0.5) and the second
run verifies each detection on the 144 px window around it (``scan --verify``), once replacing the class (and
score) and once only dropping background (``--verify-keeps-class``).

``--verifier-size 96 --verifier-strategy finetune`` trains another verifier instead (its own folder,
``run-verify96-finetune``; the 96 px patches are the windows): Lite0 fine-tuned (``--augment flip=hv``, 10 epochs
of the head, then 10 of all layers), which verifies round 2 at 0.3 only dropping background; rounds 1 and 2 and the
unverified scan at 0.3 are scanned beside it.

``--reuse`` keeps ``--out`` and skips cutting patches and training wherever a run folder from an earlier call is
there (same data, same settings: only the scans run again, a few minutes); the runs never saw the counted half.

Reported per fold and round: the class-agnostic count error, precision and recall (all animals against all dots), and
the per-class counts. Thresholds are the scan's defaults (0.5), not tuned on any region.

Data, not in this repository: the sea-lion data, cut from NOAA Fisheries' Steller sea lion count (Kaggle, 2017:
https://www.kaggle.com/c/noaa-fisheries-steller-sea-lion-population-count) by a public demo of patch-wise CNNs:
96x96 patches/{train,val,test}/CLASS/ and scenes/5.jpg with its dots scenes/5-dots.csv, by default in
../shared/data/sealions (see ../shared/data/README.md). Without it the script says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from _data import SEALIONS

CNNKIT = [sys.executable, "-m", "cnnkit.cli", "-q"]
CUT = 1600


HALVES = {"top": f"0:{CUT}", "bottom": f"{CUT}:"}  # `--region` of each half


def halves(data: Path, out: Path) -> dict[str, tuple[Path, Path, str]]:
    """scenes/5.jpg and its dots, with the `--region` of the top and bottom halves (cut at row CUT)."""
    scenes = data / "scenes"
    return {name: (scenes / "5.jpg", scenes / "5-dots.csv", region) for name, region in HALVES.items()}


def cnnkit(*args) -> None:
    subprocess.run([*CNNKIT, *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def add_patches(source: Path, patches: Path) -> None:
    """The published 96x96 patches (other photos, same scale) beside the half's own: ``backgrounds`` joins
    ``background``."""
    for split in ("train", "val"):
        for folder in sorted((source / split).iterdir()):
            target = patches / ("background" if folder.name == "backgrounds" else folder.name)
            target.mkdir(exist_ok=True)
            for image in folder.iterdir():
                shutil.copyfile(image, target / f"published-{split}-{image.name}")


def scan(run: Path, photo: Path, dots: Path, region: str, out: Path, stride: int | None) -> dict:
    start = time.perf_counter()
    cnnkit("scan", run, photo, "--region", region, "--out", out, "--dots", dots,
           *(["--stride", stride] if stride else []))
    overall = json.loads((out / "dots-overall.json").read_text())
    return {"seconds": round(time.perf_counter() - start, 1), "overall": overall,
            "per_class": json.loads((out / "dots.json").read_text())}


def scan_at(run: Path, photo: Path, dots: Path, region: str, out: Path, *options) -> dict:
    start = time.perf_counter()
    cnnkit("scan", run, photo, "--region", region, "--out", out, "--dots", dots, *options)
    return {"seconds": round(time.perf_counter() - start, 1),
            "overall": json.loads((out / "dots-overall.json").read_text()),
            "per_class": json.loads((out / "dots.json").read_text())}


VERIFIER_DEFAULT = (144, "transfer")
FINETUNE = ["--strategy", "finetune", "--augment", "flip=hv", "--epochs", 10, "--finetune-epochs", 10]


def verifier(train: tuple[Path, Path, str], mined: list[Path], out: Path, side: int = 144, strategy: str = "transfer",
             reuse: bool = False) -> Path:
    """The second run: Lite0 on ``side``-pixel windows centred where `cnnkit patches` (96 px, hard negatives of
    ``mined``) put its patches, recut from the half at ``side`` pixels; ``strategy`` transfer (the default: frozen
    backbone) or finetune."""
    from cnnkit.config.parse import parse_region
    from cnnkit.data.window import centred_window

    run = out / ("run-verify" if (side, strategy) == VERIFIER_DEFAULT else f"run-verify{side}-{strategy}")
    if reuse and (run / "config.json").exists():
        return run
    patches = out / "patches-verify96"
    if not (reuse and (patches / "manifest.csv").exists()):
        cnnkit("patches", train[0], "--dots", train[1], "--region", train[2], "--size", 96, "--per-dot", 4,
               "--jitter", 6, "--out", patches, "--hard-negatives", *mined)
    target = patches
    if side != 96:
        Image.MAX_IMAGE_PIXELS = None
        region = parse_region(train[2])
        photo = np.asarray(Image.open(train[0]).convert("RGB"))[region.top:region.bottom]  # the half, as `--region`
        target = out / f"patches-verify{side}"
        with open(patches / "manifest.csv", newline="") as f:
            for row in csv.DictReader(f):
                (target / row["class"]).mkdir(parents=True, exist_ok=True)
                Image.fromarray(centred_window(photo, int(row["row"]) - region.top, int(row["col"]), side)).save(
                    target / row["file"])
    cnnkit("train", target, "--model", "efficientnet_lite0", "--pretrained", "--image-size", side,
           *(FINETUNE if strategy == "finetune" else []), "--test-fraction", 0, "--out", run, "--no-progress")
    return run


def fold(train: tuple[Path, Path, str], test: tuple[Path, Path, str], out: Path, epochs: int, published: Path | None,
         stride: int | None, verify: bool = False, reuse: bool = False,
         verifier_setting: tuple[int, str] = VERIFIER_DEFAULT, rounds: int = 2,
         training_scan: bool = False) -> list[dict]:
    rows, mined = [], []
    for round_ in range(1, rounds + 1):
        patches, run = out / f"patches{round_}", out / f"run{round_}"
        extra = ["--hard-negatives", *mined] if mined else []
        if reuse and (run / "config.json").exists():
            rows.append({"round": round_, **scan(run, *test, out / f"scan{round_}", stride)})
            if training_scan:
                rows[-1]["training_region"] = scan(run, *train, out / f"scan{round_}-training", stride)["overall"]
            mined.append(run)
            continue
        cnnkit("patches", train[0], "--dots", train[1], "--region", train[2], "--size", 96, "--per-dot", 4,
               "--jitter", 6, "--out", patches, *extra)
        if published:
            add_patches(published, patches)
        cnnkit("train", patches, "--model", "patch_cnn", "--image-size", 96, "--epochs", epochs, "--augment",
               "flip=hv,rotate=180", "--test-fraction", 0, "--out", run, "--no-progress")  # the photo's own scale
        rows.append({"round": round_, **scan(run, *test, out / f"scan{round_}", stride)})
        if training_scan:  # the false detections left on the region it learned from: what mining works on
            rows[-1]["training_region"] = scan(run, *train, out / f"scan{round_}-training", stride)["overall"]
        mined.append(run)
    if verify:
        second = verifier(train, mined, out, *verifier_setting, reuse=reuse)
        step = ["--stride", stride] if stride else []
        rows.append({"round": "2 at 0.3", **scan_at(mined[-1], *test, out / "scan-low", "--detection-threshold",
                                                     0.3, *step)})
        if verifier_setting != VERIFIER_DEFAULT:
            side, strategy = verifier_setting
            rows.append({"round": f"2 at 0.3 + verify ({side} px, {strategy}), class kept", **scan_at(
                mined[-1], *test, out / f"scan-vk0.3-{side}-{strategy}", "--detection-threshold", 0.3,
                "--verify", second, "--verify-keeps-class", *step)})
            return rows
        for t in (0.3, 0.5):
            rows.append({"round": f"2 at {t} + verify", **scan_at(mined[-1], *test, out / f"scan-v{t}",
                                                                   "--detection-threshold", t, "--verify", second, *step)})
        rows.append({"round": "2 at 0.3 + verify, class kept", **scan_at(
            mined[-1], *test, out / "scan-vk0.3", "--detection-threshold", 0.3, "--verify", second,
            "--verify-keeps-class", *step)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SEALIONS.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-counts"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--with-patches", action="store_true", help="train on patches/{train,val} too")
    parser.add_argument("--stride", type=int, help="pixels between scanned windows (default the network's, 4)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of training and mining (2)")
    parser.add_argument("--training-scan", action="store_true",
                        help="also scan each round's own training half: its false detections there")
    parser.add_argument("--verify", action="store_true", help="also the two-stage scan (a Lite0 verifier)")
    parser.add_argument("--reuse", action="store_true", help="keep --out's trained runs; only the scans run again")
    parser.add_argument("--verifier-size", type=int, default=VERIFIER_DEFAULT[0], help="the verifier's window (px)")
    parser.add_argument("--verifier-strategy", choices=["transfer", "finetune"], default=VERIFIER_DEFAULT[1],
                        help="the verifier's training: frozen backbone and head, or fine-tuned with flips")
    args = parser.parse_args()
    if SEALIONS.missing(args.data):
        return
    if not args.reuse:
        shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    parts = halves(args.data, args.out)
    results = {}
    published = args.data / "patches" if args.with_patches else None
    for train_half, test_half in (("top", "bottom"), ("bottom", "top")):
        results[f"train {train_half}, count {test_half}"] = fold(parts[train_half], parts[test_half],
                                                                 args.out / f"fold-{train_half}", args.epochs,
                                                                 published, args.stride, args.verify, args.reuse,
                                                                 (args.verifier_size, args.verifier_strategy),
                                                                 args.rounds, args.training_scan)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print("| fold | round | animals: detected / dots | count error | precision | recall | scan (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        for r in rows:
            o = r["overall"]
            p = "n/a" if o["precision"] is None else f"{o['precision']:.2f}"
            rc = "n/a" if o["recall"] is None else f"{o['recall']:.2f}"
            print(f"| {name} | {r['round']} | {o['detected']} / {o['dots']} | {o['count_error'] / o['dots']:+.0%} "
                  f"| {p} | {rc} | {r['seconds']} |")
    print("\n| fold | round | per class: detected / dots |\n|---|---|---|")
    for name, rows in results.items():
        for r in rows:
            print(f"| {name} | {r['round']} | " + ", ".join(
                f"{c} {v['detected']} / {v['dots']}" for c, v in sorted(r["per_class"].items())) + " |")
    if args.training_scan:
        print("\n| fold | round | on its own training half: detections / dots | matched | false detections |")
        print("|---|---|---|---|---|")
        for name, rows in results.items():
            for r in rows:
                if "training_region" in r:
                    t = r["training_region"]
                    print(f"| {name} | {r['round']} | {t['detected']} / {t['dots']} | {t['matched']} "
                          f"| {t['detected'] - t['matched']} |")


if __name__ == "__main__":
    main()
