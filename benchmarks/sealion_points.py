"""The shipped point detector (``cnnkit points``) on the sea-lion folds of ``sealion_counts.py``: scenes/5.jpg cut at
row 1600, trained on one half (``--region``), counted on the other, both ways; plain commands, as a user types them.

    python benchmarks/sealion_points.py --data ../shared/data/sealions --out /tmp/cnnkit-points
    python benchmarks/sealion_points.py --seeds 0 1 --verifiers /tmp/cnnkit-counts   # plus per-class counts

Per fold and seed:

    cnnkit points scenes/5.jpg --dots scenes/5-dots.csv --region TRAIN --patches patches/train --seed S --out RUN
    cnnkit scan RUN scenes/5.jpg --dots scenes/5-dots.csv --region TEST --radius 48 --precision 32 --out SCAN

Every setting is the default (6 epochs of 100 steps, 8 crops of 256 px and 8 published patches per step, threshold 0.3),
fixed before any count was seen; ``--radius 48`` is the match distance of every other sea-lion measurement (half the 96
px patch). ``--variants`` chooses what the detectors learn from besides the crops (``points+patches``, the default: the
published patches; ``points``: nothing; ``own``: also the half's ``cnnkit patches`` folder, 96 px, 60 random
backgrounds; ``mined``: that folder with 60 hard negatives mined on the half by the ``points+patches`` run, round 2 of
the README's train, mine, retrain; ``mined3``: round 3, the same folder with the hard negatives of both the
``points+patches`` and the ``mined`` run (as the README's patch classifiers mine round 3); ``by-class``: the published
patches, and ``--by-class``, so that the detector names each animal's class; ``augmented``: the published patches, and
``--augment AUGMENT``, photometric transforms of every crop and patch, set from how the published patches differ from
the photo (twice its contrast, more saturated), before any count; ``upscaled``: the photo and the published patches
doubled in size, the half learned there and counted on the photo with ``scan --scale 2 --min-distance 16``, the same 16
px of the photo):

    python benchmarks/sealion_points.py --variants points+patches own mined --seeds 0 1

With ``--verifiers DIR`` (the ``--out`` of ``sealion_counts.py --verify --verifier-size 96 --verifier-strategy
finetune``), each scan is also verified by that fold's verifier (``DIR/fold-TRAIN/run-verify96-finetune``: Lite0
fine-tuned on 96 px patches of the training half, its hard negatives included): ``scan --verify`` names each
detection's class or drops it as background, which gives per-class counts.

Data, not in this repository: the sea-lion data, cut from NOAA Fisheries' Steller sea lion count (Kaggle, 2017:
https://www.kaggle.com/c/noaa-fisheries-steller-sea-lion-population-count) by a public demo of patch-wise CNNs:
96x96 patches/{train,val,test}/CLASS/ and scenes/5.jpg with its dots scenes/5-dots.csv, by default in
../shared/data/sealions (see ../shared/data/README.md). Without it the script says so in one line and exits 0.
--verifiers is the --out of benchmarks/sealion_counts.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _data import SEALIONS, missing_made

CNNKIT = [sys.executable, "-m", "cnnkit.cli", "-q"]
HALVES = {"top": "0:1600", "bottom": "1600:"}


def run(*args) -> float:
    start = time.perf_counter()
    subprocess.run([*CNNKIT, *map(str, args)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def scan(detector: Path, photo: Path, dots: Path, region: str, out: Path, *extra) -> dict:
    run("scan", detector, photo, "--dots", dots, "--region", region, "--radius", "48", "--precision", "32",
        "--out", out, *extra)
    summary = json.loads((out / "scan.json").read_text())
    overall = json.loads((out / "dots-overall.json").read_text())
    per_class = json.loads((out / "dots.json").read_text()) if (out / "dots.json").exists() else None
    return {"seconds": summary["seconds"], "overall": overall, "per_class": per_class}


def sweep(folder: Path, dots: Path, region: str) -> dict:
    """Detections and their match with the dots at thresholds 0.1-0.5, from the scan's saved map (the table of the
    fourth measurement; 0.3 is the default, fixed in advance)."""
    import numpy as np

    from cnnkit.config.parse import parse_region
    from cnnkit.data.dots import read_dots
    from cnnkit.scan.detect import detect, overall_with_dots
    from cnnkit.scan.windows import ScanResult

    summary = json.loads((folder / "scan.json").read_text())
    spacing = summary["min_distance"]  # per class (one here) when the run stores chosen distances
    spacing = next(iter(spacing.values())) if isinstance(spacing, dict) else spacing
    heat = np.load(next(folder.glob("heatmap_*.npy")))
    result = ScanResult(heat[None], summary["stride"], tuple(summary["window"]), 0.0, False, "points")
    inside = parse_region(region).local(read_dots(dots))[1]
    rows = {}
    for t in (0.1, 0.2, 0.3, 0.4, 0.5):
        found = detect(result, ["object"], t, spacing, (), summary["scale"])
        o = overall_with_dots(found, inside, 48.0)
        rows[t] = (o["detected"], o["dots"], o["precision"], o["recall"])
    return rows


AUGMENT = "brightness=0.2,contrast=0.5,saturation=0.8"  # the published patches have twice the photo's contrast
VARIANTS = ("points+patches", "points", "own", "mined", "mined3", "by-class", "augmented", "upscaled")  # learned from


def contrast(args) -> str:
    """The median grey standard deviation of a 96 px window of the published training patches and around scene 5's
    dots (why ``augmented`` lowers contrast)."""
    import numpy as np
    from PIL import Image

    from cnnkit.data.dots import read_dots

    def spread(image) -> float:
        return float(np.asarray(image.convert("L"), dtype=np.float64).std())

    with Image.open(args.data / "scenes" / "5.jpg") as photo:
        around = [spread(photo.crop((int(col) - 48, int(row) - 48, int(col) + 48, int(row) + 48)))
                  for _, row, col in read_dots(args.data / "scenes" / "5-dots.csv")]
    patches = [spread(Image.open(p)) for p in sorted((args.data / "patches" / "train").glob("*/*.png"))]
    return (f"grey std of a 96 px window: patches/train {np.median(patches):.0f}, around scene 5's dots "
            f"{np.median(around):.0f}")


def upscaled(args) -> tuple[Path, Path, Path]:
    """The photo, its dots and the published training patches at twice their size (bicubic), made once under
    ``--out``: a detector that sees a pup (about 25 px) at 50 px."""
    import csv

    from PIL import Image

    folder = args.out / "upscaled"
    photo, dots, patches = folder / "5.jpg", folder / "5-dots.csv", folder / "patches"
    if not photo.exists():  # written last: a preparation cut short is redone
        folder.mkdir(parents=True, exist_ok=True)
        with open(args.data / "scenes" / "5-dots.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        with open(dots, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({**r, "row": float(r["row"]) * 2, "col": float(r["col"]) * 2} for r in rows)
        for source in sorted((args.data / "patches" / "train").glob("*/*.png")):
            (patches / source.parent.name).mkdir(parents=True, exist_ok=True)
            with Image.open(source) as image:
                image.convert("RGB").resize((image.width * 2, image.height * 2), Image.BICUBIC).save(
                    patches / source.parent.name / source.name)
        Image.MAX_IMAGE_PIXELS = None
        with Image.open(args.data / "scenes" / "5.jpg") as image:
            image.convert("RGB").resize((image.width * 2, image.height * 2), Image.BICUBIC).save(photo, quality=95)
    return photo, dots, patches


def patch_folder(args, photo: Path, dots: Path, train: str, folder: Path, *mining) -> Path:
    """``cnnkit patches`` of the training half (96 px, 60 random backgrounds, as many mined with ``mining``)."""
    out = folder / "patches"
    if not (out / "manifest.csv").exists():
        run("patches", photo, "--dots", dots, "--region", HALVES[train], "--size", "96", "--backgrounds", "60",
            "--out", out, "--overwrite", *(["--hard-negatives", *mining] if mining else []))
    return out


def fold(args, train: str, test: str, seed: int, variant: str) -> dict:
    """One detector: ``points`` learns from the half's crops alone, ``points+patches`` also from the published
    patches, ``own`` also from the half's own ``cnnkit patches`` folder, ``mined`` from that folder with the hard
    negatives the ``points+patches`` run of the same seed mines on the half (round 2 of train, mine, retrain),
    ``mined3`` with those of the ``points+patches`` and ``mined`` runs (round 3),
    ``by-class`` as ``points+patches`` and also learning each dot's class (``--by-class``: per-class counts),
    ``augmented`` as ``points+patches`` with ``--augment AUGMENT``, ``upscaled`` as ``points+patches`` on the photo
    and patches doubled in size (``upscaled``), counted with ``scan --scale 2``."""
    photo, dots = args.data / "scenes" / "5.jpg", args.data / "scenes" / "5-dots.csv"
    folder = args.out / f"fold-{train}" / f"{variant}-seed{seed}"
    extra = [] if variant == "points" else ["--patches", args.data / "patches" / "train"]
    if variant == "own":
        extra += ["--patches", patch_folder(args, photo, dots, train, folder)]
    if variant == "by-class":
        extra += ["--by-class"]
    if variant == "augmented":
        extra += ["--augment", AUGMENT]
    if variant in ("mined", "mined3"):
        runs = [args.out / f"fold-{train}" / f"{v}-seed{seed}" / "run" for v in ("points+patches", "mined")]
        extra += ["--patches", patch_folder(args, photo, dots, train, folder, *runs[:1 if variant == "mined" else 2])]
    learn_photo, learn_dots, learn_region, at = photo, dots, HALVES[train], []
    if variant == "upscaled":  # learn on the doubled photo and patches; count on the photo scanned at --scale 2
        learn_photo, learn_dots, doubled = upscaled(args)
        extra = ["--patches", doubled]
        learn_region = ":".join(str(2 * int(x)) if x else "" for x in HALVES[train].split(":"))
        at = ["--scale", "2", "--min-distance", "16"]
    seconds = None
    record = folder / "run" / "config.json"
    if not record.exists() or json.loads(record.read_text())["status"] != "finished":
        seconds = run("points", learn_photo, "--dots", learn_dots, "--region", learn_region, "--seed", seed, *extra,
                      "--out", folder / "run", "--overwrite")
    result = {"train_seconds": seconds,
              "plain": scan(folder / "run", photo, dots, HALVES[test], folder / "scan", *at)}
    result["thresholds"] = sweep(folder / "scan", dots, HALVES[test])
    if args.verifiers:
        verifier = args.verifiers / f"fold-{train}" / "run-verify96-finetune"
        result["verified"] = scan(folder / "run", photo, dots, HALVES[test], folder / "scan-verified",
                                  "--verify", verifier, *at)
    return result


def line(fold_name: str, name: str, r: dict) -> str:
    o = r["overall"]
    p = "n/a" if o["precision"] is None else f"{o['precision']:.2f}"
    classes = ""
    if r["per_class"]:
        classes = "; ".join(f"{c} {v['detected']}/{v['dots']}" for c, v in sorted(r["per_class"].items()))
    return (f"| {fold_name} | {name} | {o['detected']} / {o['dots']} | {(o['detected'] - o['dots']) / o['dots']:+.0%} "
            f"| {p} | {o['recall']:.2f} | {r['seconds']:.1f} | {classes} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SEALIONS.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-points"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--verifiers", type=Path, help="sealion_counts.py's --out, with its verifier runs")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["points+patches"],
                        help="mined: round 2, with the hard negatives of points+patches (run it first); "
                             "mined3: round 3 (after mined)")
    args = parser.parse_args()
    if SEALIONS.missing(args.data):
        return
    if args.verifiers and missing_made(args.verifiers, "python benchmarks/sealion_counts.py --verify --verifier-size "
                                       "96 --verifier-strategy finetune (its --out)", "fold-top/run-verify96-finetune"):
        return
    if "augmented" in args.variants:
        print(contrast(args), file=sys.stderr)
    results = {}
    for train, test in (("top", "bottom"), ("bottom", "top")):
        for seed in args.seeds:
            for variant in sorted(set(args.variants), key=VARIANTS.index):  # mined needs points+patches first
                name = f"{variant}, seed {seed}"
                results.setdefault(f"learn {train}, count {test}", {})[name] = fold(args, train, test, seed, variant)
                print(f"learn {train}: {name} done", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print("| fold | detector | animals: detected / dots | count error | precision | recall | scan seconds | per class "
          "(detected / dots) |\n|---|---|---|---|---|---|---|---|")
    for fold_name, rows in results.items():
        for name, r in rows.items():
            print(line(fold_name, name, r["plain"]))
            if "verified" in r:
                print(line(fold_name, name + ", verified", r["verified"]))
    print("\n| fold | detector | 0.1 | 0.2 | 0.3 (default) | 0.4 | 0.5 |\n|---|---|---|---|---|---|---|")
    for fold_name, rows in results.items():
        for name, r in rows.items():
            cells = [f"{d} / {n}, {'n/a' if p is None else f'{p:.2f}'} / {rc:.2f}"
                     for d, n, p, rc in r["thresholds"].values()]
            print(f"| {fold_name} | {name} | " + " | ".join(cells) + " |")
    print("\ntraining seconds: " + ", ".join(f"{f} {n}: {r['train_seconds']:.0f}" for f, rows in results.items()
                                             for n, r in rows.items() if r["train_seconds"]))


if __name__ == "__main__":
    main()
