"""The learning-rate finder's suggestion against a grid of fixed rates: does it land within the best third?

    python benchmarks/lr_find.py --hymenoptera ../shared/data/hymenoptera --out /tmp/cnnkit-lr-find

For each data set, ``lr_find`` runs with the default sweep (1e-7 to 10, 100 batches) for each seed; then the same
model is trained at 7 fixed rates, log-spaced from 1e-4 to 1, for the same epochs, 3 seeds each, with everything else
at train's defaults (Adam, cosine schedule, early stopping). Per rate: the median over seeds of the validation
accuracy of the kept epoch. The best third of the grid is the 3 rates of 7 with the highest median (ties included).
The suggestion (median over the sweeps' seeds) counts as landing there when the grid rate nearest to it (in log)
is one of them. The older rule, a tenth of the rate at the lowest smoothed loss, is read off the same sweeps.

Data sets: digits (built-in, 8x8, 10 classes) and wafers (built-in, balanced, 40 per class) with simple_cnn from scratch;
hymenoptera (validation carved from train/, its val/ as the unused test split) with efficientnet_lite0
pretrained, transfer, the head trained by epochs on cached features (what the suggested command line asks for).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

GRID = [float(f"{r:.2g}") for r in np.geomspace(1e-4, 1.0, 7)]


def data_sets(args) -> dict[str, tuple[Path, dict]]:
    from cnnkit.data.builtin import export_dataset

    sets = {}
    for name, size in (("digits", None), ("wafers", 40)):
        folder = args.out / "data" / name
        if not folder.exists():
            export_dataset(name, folder, size=size, balanced=size is not None)
        sets[name] = (folder, {"model": "simple_cnn", "epochs": args.epochs})
    hymenoptera = args.out / "data" / "hymenoptera"
    if not hymenoptera.exists():
        hymenoptera.mkdir(parents=True)
        (hymenoptera / "train").symlink_to(args.hymenoptera.resolve() / "train")
        (hymenoptera / "test").symlink_to(args.hymenoptera.resolve() / "val")
    sets["hymenoptera"] = (hymenoptera, {"model": "efficientnet_lite0", "pretrained": True, "head_solver": "epochs",
                                         "epochs": args.epochs, "skip_bad": True})
    return sets


def measure(name: str, data: Path, settings: dict, args) -> dict:
    from cnnkit.training.fit import train
    from cnnkit.training.lr_find import lr_find

    start = time.perf_counter()
    sweeps = [lr_find(data, args.out / "sweeps" / f"{name}-{seed}", seed=seed, progress=False, **settings)
              for seed in args.seeds]
    sweep_seconds = (time.perf_counter() - start) / len(sweeps)
    accuracy = {}
    for rate in GRID:
        scores = []
        for seed in args.seeds:
            run = train(data, args.out / "runs" / f"{name}-{rate:g}-{seed}", lr=rate, seed=seed, progress=False,
                        overwrite=True, **settings)
            scores.append(run.record.result.best_val_acc)
        accuracy[rate] = float(np.median(scores))
        print(json.dumps({name: {"lr": rate, "val_acc": scores}}), flush=True)
    suggestion = float(np.median([s.suggestion for s in sweeps]))
    older = float(np.median([s.lowest_loss_lr / 10 for s in sweeps]))
    third = sorted(accuracy.values(), reverse=True)[math.ceil(len(GRID) / 3) - 1]
    best = [r for r in GRID if accuracy[r] >= third]
    return {"suggestions": [s.suggestion for s in sweeps], "suggestion": suggestion, "lowest_loss_tenth": older,
            "accuracy": accuracy, "best_third": best, "sweep_seconds": round(sweep_seconds, 1),
            "lands": nearest(suggestion) in best, "older_lands": nearest(older) in best}


def nearest(rate: float) -> float:
    return min(GRID, key=lambda r: abs(math.log(r / rate)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hymenoptera", type=Path, default=Path("../shared/data/hymenoptera"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-lr-find"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="data sets to run (default all)")
    args = parser.parse_args()
    results = {}
    for name, (data, settings) in data_sets(args).items():
        if args.only and name not in args.only:
            continue
        results[name] = measure(name, data, settings, args)
        print(json.dumps({name: results[name]}), flush=True)
    print("\n| data, model | " + " | ".join(f"{r:g}" for r in GRID) + " | suggested (per seed) | nearest grid rate "
          "in best third? | lowest-loss lr / 10 in best third? | sweep (s) |")
    print("|---" * (len(GRID) + 5) + "|")
    for name, r in results.items():
        cells = " | ".join(f"**{r['accuracy'][g]:.3f}**" if g in r["best_third"] else f"{r['accuracy'][g]:.3f}"
                           for g in GRID)
        print(f"| {name} | {cells} | {r['suggestion']:g} ({', '.join(f'{s:g}' for s in r['suggestions'])}) | "
              f"{'yes' if r['lands'] else 'no'} ({nearest(r['suggestion']):g}) | "
              f"{'yes' if r['older_lands'] else 'no'} ({r['lowest_loss_tenth']:.2g}) | {r['sweep_seconds']} |")


if __name__ == "__main__":
    main()
