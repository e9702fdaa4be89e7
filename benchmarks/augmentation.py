"""When does augmentation help? simple_cnn on wafers and digits with 10 and 30 training images per class:
no augmentation, geometric augmentation, mixup, and geometric augmentation plus test-time augmentation; and on the
imbalanced wafers, balanced accuracy with and without --balance.

Each dataset gets one fixed test set (30% of every class, chosen once); each seed draws its own training and
validation images (k and k/2 per class) from the rest and initialises the network differently. Prints Markdown tables
(their numbers are in benchmarks/results/augmentation.json, from which BENCHMARKS.md is generated) and writes every
number to OUT/results.json.

    python benchmarks/augmentation.py --seeds 0 1 2 --out /tmp/cnnkit-aug

Data: the built-in wafers and digits; nothing from outside this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from cnnkit import TrainConfig, evaluate, export_dataset, train
from cnnkit.data.files import scan_folder

GEOMETRIC = {"wafers": "flip=hv,rotate=180", "digits": "rotate=10,translate=0.1,zoom=0.1,shear=5"}
SETTINGS = {"none": {}, "geometric": {"augment": "GEOMETRIC"}, "mixup": {"mixup": 0.4}}
TTA = 8


def few_shot_folder(source: Path, out: Path, per_class: int, seed: int) -> Path:
    """out/{train,val,test}/<class>/: the test set is fixed (seed 1234), train/val drawn with ``seed``."""
    scan = scan_folder(source)
    for name, samples in ((n, [s for s in scan.samples["all"] if s[1] == n]) for n in scan.classes):
        files = sorted(rel for rel, _ in samples)
        order = np.random.default_rng(1234).permutation(len(files))
        n_test = int(round(0.3 * len(files)))
        test, pool = [files[i] for i in order[:n_test]], [files[i] for i in order[n_test:]]
        pool = [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]
        for split, chosen in (("train", pool[:per_class]), ("val", pool[per_class:per_class + per_class // 2]),
                              ("test", test)):
            (out / split / name).mkdir(parents=True, exist_ok=True)
            for rel in chosen:
                shutil.copyfile(source / rel, out / split / name / Path(rel).name)
    return out


def fit_and_score(data: Path, run: Path, seed: int, tta: bool = False, **settings) -> dict:
    config = TrainConfig(model="simple_cnn", epochs=60, early_stopping=20, batch_size=16, seed=seed, **settings)
    start = time.perf_counter()
    train(data, run, config, progress=False)
    seconds = time.perf_counter() - start
    test = evaluate(run, report=False).metrics
    scores = {"accuracy": test["accuracy"], "balanced_accuracy": test["balanced_accuracy"],
              "train_seconds": seconds, "n_test": test["n"]}
    if tta:
        m = evaluate(run, tta=TTA, report=False).metrics
        scores.update({"tta_accuracy": m["accuracy"], "tta_balanced_accuracy": m["balanced_accuracy"],
                       "tta_time_ratio": m["tta"]["time_ratio"]})
    return scores


def summary(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ({min(values):.4f}-{max(values):.4f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--per-class", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-aug"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    sources = {"wafers": export_dataset("wafers", args.out / "src-wafers", seed=0, balanced=True, size=100) and
               args.out / "src-wafers",
               "digits": export_dataset("digits", args.out / "src-digits") and args.out / "src-digits"}
    results: dict = {"few_shot": {}, "balance": {}}
    for dataset, source in sources.items():
        for k in args.per_class:
            for seed in args.seeds:
                data = few_shot_folder(source, args.out / f"{dataset}-{k}-s{seed}", k, seed)
                for name, settings in SETTINGS.items():
                    settings = {key: GEOMETRIC[dataset] if v == "GEOMETRIC" else v for key, v in settings.items()}
                    scores = fit_and_score(data, args.out / "runs" / f"{dataset}-{k}-{name}-s{seed}", seed,
                                           tta=name == "geometric", **settings)
                    results["few_shot"].setdefault(f"{dataset}|{k}|{name}", []).append(scores)
                    print(dataset, k, name, seed, scores, file=sys.stderr, flush=True)
    imbalanced = args.out / "src-wafers-imbalanced"
    export_dataset("wafers", imbalanced, seed=0)
    for mode in ("none", "oversample", "weights"):
        for seed in args.seeds:
            config = TrainConfig(model="simple_cnn", epochs=30, seed=seed, balance=mode)
            trained = train(imbalanced, args.out / "runs" / f"balance-{mode}-s{seed}", config, progress=False)
            m = evaluate(trained.run_dir, report=False).metrics
            worst = min(m["per_class"].values(), key=lambda s: s["recall"])["recall"]
            results["balance"].setdefault(mode, []).append(
                {"accuracy": m["accuracy"], "balanced_accuracy": m["balanced_accuracy"], "worst_recall": worst})
            print("balance", mode, seed, results["balance"][mode][-1], file=sys.stderr, flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))

    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"date {time.strftime('%Y-%m-%d')}; seeds {args.seeds}\n")
    print(f"| data | train/class | none | geometric | mixup (alpha 0.4) | geometric + TTA x{TTA} | test images |")
    print("|---|---|---|---|---|---|---|")
    for dataset in sources:
        for k in args.per_class:
            rows = {name: results["few_shot"][f"{dataset}|{k}|{name}"] for name in SETTINGS}
            tta = [r["tta_accuracy"] for r in rows["geometric"]]
            print(f"| {dataset} | {k} | " + " | ".join(summary([r["accuracy"] for r in rows[n]]) for n in SETTINGS)
                  + f" | {summary(tta)} | {rows['none'][0]['n_test']} |")
    print("\n| wafers (imbalanced 20:1), simple_cnn 30 epochs | accuracy | balanced accuracy | worst class recall |")
    print("|---|---|---|---|")
    for mode, rows in results["balance"].items():
        print(f"| --balance {mode} | {summary([r['accuracy'] for r in rows])} | "
              f"{summary([r['balanced_accuracy'] for r in rows])} | {summary([r['worst_recall'] for r in rows])} |")


if __name__ == "__main__":
    main()
