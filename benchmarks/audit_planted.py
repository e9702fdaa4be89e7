"""`cnnkit audit` against faults planted in a copy of a real set, and its time on 10,000 images.

    python benchmarks/audit_planted.py --hymenoptera ../shared/data/hymenoptera --out /tmp/cnnkit-audit [--seeds 0 1 2 3]
    python benchmarks/audit_planted.py --timing-only --images /tmp/cnnkit-trainmem/images-10000

Planted in a copy of hymenoptera (train/ and val/ as given; val/ is the split a score is read on):
- 10 exact duplicates across splits: a train image copied into val/ (same class);
- 10 near-duplicates across splits: a train image re-encoded as JPEG at quality 80 and 3 levels brighter, into val/;
- 5% of the train labels flipped (moved to the other class folder);
- one class (ants) re-encoded everywhere at JPEG quality 40, the other left as it is (the original JPEGs).
The same faults are then planted again without the re-encoded class (a trace can make a wrong label look right).
Each seed draws other images to duplicate and flip (12 flipped labels: one is 8 points of the share found); the
medians over seeds are printed last.
Reported: the share of planted duplicates found (grouped with their source), the share of flipped labels among the
top-ranked suspects at 10% false alarms (the top k where k = flipped / 0.9), whether the re-encoded class is
flagged, what else was reported, and the time (features: EfficientNet-Lite0, pretrained, cached).
The timing run audits a folder of 10,000 images twice (the second time with the features cached).

Data, not in this repository: hymenoptera, the ants-and-bees set of PyTorch's transfer-learning tutorial
(https://download.pytorch.org/tutorial/hymenoptera_data.zip, unzipped: train/ and val/), by default in
../shared/data/hymenoptera. Without it the script says so in one line and exits 0.
The timing folder (--images) is one that benchmarks/train_memory.py generates.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from _data import HYMENOPTERA, missing_made

CNNKIT = [sys.executable, "-m", "cnnkit.cli", "-q"]


def plant(source: Path, data: Path, seed: int = 0, trace: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    shutil.copytree(source, data)
    (data / "train" / "ants" / "imageNotFound.gif").unlink(missing_ok=True)  # the set's own placeholder
    train = sorted(p for p in (data / "train").rglob("*.jpg"))
    picked = [train[i] for i in rng.permutation(len(train))]
    exact, near, flipped = picked[:10], picked[10:20], picked[20:20 + round(0.05 * len(train))]
    planted = {"exact": [], "near": [], "flipped": []}
    for i, p in enumerate(exact):
        copy = data / "val" / p.parent.name / f"planted_exact_{i}.jpg"
        shutil.copy(p, copy)
        planted["exact"].append([p.relative_to(data).as_posix(), copy.relative_to(data).as_posix()])
    for i, p in enumerate(near):
        pixels = np.clip(np.asarray(Image.open(p).convert("RGB"), dtype=np.int16) + 3, 0, 255).astype(np.uint8)
        copy = data / "val" / p.parent.name / f"planted_near_{i}.jpg"
        Image.fromarray(pixels).save(copy, quality=80)
        planted["near"].append([p.relative_to(data).as_posix(), copy.relative_to(data).as_posix()])
    for p in flipped:
        other = "bees" if p.parent.name == "ants" else "ants"
        target = data / "train" / other / f"flipped_{p.name}"
        p.rename(target)
        planted["flipped"].append(target.relative_to(data).as_posix())
    for p in [*(data / "train" / "ants").glob("*.jpg"), *(data / "val" / "ants").glob("*.jpg")] if trace else []:
        Image.open(p).convert("RGB").save(p, quality=40)  # the trace: one class re-encoded
    return planted


def score(found: dict, planted: dict) -> dict:
    groups = [set(g["files"]) for g in found["exact_duplicates"] + found["near_duplicates"]]
    def grouped(pair):
        return any(set(pair) <= g for g in groups)

    k = int(np.ceil(len(planted["flipped"]) / 0.9))
    top = [s["file"] for s in found["label_suspects"][:k]]
    planted_files = {f for pair in planted["exact"] + planted["near"] for f in pair}
    other_groups = [g for g in groups if not g & planted_files]
    return {"exact_found": sum(map(grouped, planted["exact"])), "exact_planted": len(planted["exact"]),
            "near_found": sum(map(grouped, planted["near"])), "near_planted": len(planted["near"]),
            "flipped_in_top_k": sum(f in top for f in planted["flipped"]), "flipped": len(planted["flipped"]),
            "k": k, "trace_flagged": found["metadata"]["trace"]["flagged"],
            "trace_balanced_accuracy": found["metadata"]["trace"]["balanced_accuracy"],
            "best_single_features": found["metadata"]["trace"].get("best_single_features"),
            "other_duplicate_groups": len(other_groups), "suspects": len(found["label_suspects"]),
            "seconds": found["seconds"]}


def audit(data: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([*CNNKIT, "audit", str(data), "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    found = json.loads((out / "audit.json").read_text())
    found["wall_s"] = round(time.perf_counter() - start, 1)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hymenoptera", type=Path, default=HYMENOPTERA.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-audit"))
    parser.add_argument("--images", type=Path, help="a folder of about 10,000 images for the timing")
    parser.add_argument("--timing-only", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    args = parser.parse_args()
    if not args.timing_only and HYMENOPTERA.missing(args.hymenoptera, "--hymenoptera"):
        return
    if args.images and missing_made(args.images, "python benchmarks/train_memory.py (its OUT/images-10000)"):
        return
    if not args.timing_only:
        clean = audit(args.hymenoptera, args.out / "audit-original")
        print(json.dumps({"original set": clean["summary"], "seconds": clean["wall_s"]}), flush=True)
        results = {"planted": [], "planted, no trace": []}
        for seed in args.seeds:
            for name, trace in (("planted", True), ("planted, no trace", False)):
                data = args.out / "planted"
                shutil.rmtree(data, ignore_errors=True)
                planted = plant(args.hymenoptera, data, seed, trace=trace)
                found = score(audit(data, args.out / f"audit-{seed}-{'trace' if trace else 'no-trace'}"), planted)
                results[name].append(found)
                print(json.dumps({name: found, "seed": seed}), flush=True)
            shutil.rmtree(args.out / "planted")
        for name, rows in results.items():
            medians = {key: float(np.median([r[key] for r in rows])) for key in rows[0]
                       if isinstance(rows[0][key], (int, float)) and not isinstance(rows[0][key], bool)}
            medians["trace_flagged_seeds"] = sum(bool(r["trace_flagged"]) for r in rows)
            print(json.dumps({f"{name}, median of {len(rows)} seeds": medians}), flush=True)
    if args.images:
        for attempt in (1, 2):
            found = audit(args.images, args.out / f"audit-timing-{attempt}")
            print(json.dumps({"images": found["images"], "attempt": attempt, "wall_s": found["wall_s"],
                              "summary": found["summary"]}), flush=True)


if __name__ == "__main__":
    main()
