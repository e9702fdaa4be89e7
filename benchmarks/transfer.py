"""Transfer learning on hymenoptera (ants vs bees; train 244, val 153): simple_cnn from scratch, a frozen
EfficientNet-Lite0 with a new head (features cached), and fine-tuning; plus the time per head epoch with and without
the feature cache, as a ratio measured in one run.

    python benchmarks/transfer.py --data ../shared/data/hymenoptera --out /tmp/cnnkit-transfer

The data has train/ and val/ only. Since issue 13 cnnkit refuses to score the images that chose the kept epoch, and
since issue 14 the solved head uses train+val: so val/ serves as the test split here (see held_out_layout), scored once,
never seen by training or by any choice. The PyTorch tutorial's numbers (validation accuracy, best epoch chosen on
val/) are optimistic by comparison.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

from cnnkit import RunFolder, TrainConfig, evaluate, train, train_baseline

RUNS = {
    "simple_cnn from scratch (64x64, 30 epochs, flip augmentation)":
        dict(model="simple_cnn", epochs=30, augment="flip,rotate=10,zoom=0.1"),
    "efficientnet_lite0 transfer, head solved (L-BFGS, C by cross-validation)":
        dict(model="efficientnet_lite0", pretrained=True, strategy="transfer"),
    "efficientnet_lite0 transfer, head trained 30 epochs (--head-solver epochs)":
        dict(model="efficientnet_lite0", pretrained=True, strategy="transfer", head_solver="epochs", epochs=30),
    "efficientnet_lite0 finetune (solved head, then all stages 4 epochs at lr 1e-4)":
        dict(model="efficientnet_lite0", pretrained=True, strategy="finetune", finetune_epochs=4, finetune_lr=1e-4),
}


def held_out_layout(data: Path, out: Path) -> Path:
    """train/ as the data's train/, and its val/ as test/: validation is carved from train/, and the 153 images of
    val/ are scored once, never seen by training or by any choice (epoch, C)."""
    layout = out / "data"
    layout.mkdir(parents=True)
    (layout / "train").symlink_to((data / "train").resolve(), target_is_directory=True)
    (layout / "test").symlink_to((data / "val").resolve(), target_is_directory=True)
    return layout


def measure(name: str, run: Path, fit) -> dict:
    start = time.perf_counter()
    result = fit().result
    seconds = time.perf_counter() - start
    m = evaluate(run, report=False).metrics
    record = RunFolder(run).read_record()
    row = {"name": name, "test_accuracy": m["accuracy"], "n": m["n"],
           "best_epoch": None if result.best_epoch is None else result.best_epoch + 1, "epochs": result.epochs_run,
           "seconds": seconds, "epoch_seconds": list(result.epoch_seconds),
           "cache": record.feature_cache and dataclasses.asdict(record.feature_cache)}
    print(row, file=sys.stderr, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/data/hymenoptera"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-transfer"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    os.environ["CNNKIT_CACHE_DIR"] = str(args.out / "cache")  # a cold cache: the first run pays for the features
    data = held_out_layout(args.data, args.out)
    rows = [measure(name, args.out / f"run{i}",
                    lambda i=i, settings=settings: train(data, args.out / f"run{i}",
                                                         TrainConfig(seed=args.seed, **settings), progress=False))
            for i, (name, settings) in enumerate(RUNS.items())]
    rows.append(measure("linear probe (cnnkit baseline --method probe)", args.out / "probe",
                        lambda: train_baseline(data, args.out / "probe", method="probe", seed=args.seed)))
    # Head training without the cache: the frozen backbone runs on every image, every epoch.
    uncached = TrainConfig(model="efficientnet_lite0", pretrained=True, head_solver="epochs", epochs=2,
                           feature_cache=False, seed=args.seed)
    train(data, args.out / "uncached", uncached, progress=False)
    slow = RunFolder(args.out / "uncached").read_record().result.epoch_seconds
    fast = rows[2]["epoch_seconds"]
    (args.out / "results.json").write_text(json.dumps({"runs": rows, "uncached_epoch_seconds": slow}, indent=2))

    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"date {time.strftime('%Y-%m-%d')}; seed {args.seed}\n")
    print("| run | test accuracy (n=153) | best epoch / epochs | wall time (s) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['test_accuracy']:.4f} | {r['best_epoch']} / {r['epochs']} | {r['seconds']:.0f} |")
    cached_median = statistics.median(fast[1:])
    print(f"\nHead epoch without cache: {statistics.mean(slow):.2f} s; with cached features from the second epoch "
          f"on: median {cached_median * 1000:.1f} ms; ratio {statistics.mean(slow) / cached_median:.0f}x.")


if __name__ == "__main__":
    main()
