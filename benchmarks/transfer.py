"""Transfer learning on hymenoptera (ants vs bees; train 244, val 153): simple_cnn from scratch, a frozen
EfficientNet-Lite0 with a new head (features cached), and fine-tuning; plus the time per head epoch with and without
the feature cache, as a ratio measured in one run.

    python benchmarks/transfer.py --data ../shared/data/hymenoptera --out /tmp/cnnkit-transfer

The data has train/ and val/ only, like the PyTorch tutorial this compares with: validation accuracy is reported
(model selection uses the validation loss, as the tutorial's best-epoch choice uses validation accuracy).
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

from cnnkit import RunFolder, TrainConfig, evaluate, train

RUNS = {
    "simple_cnn from scratch (64x64, 30 epochs, flip augmentation)":
        dict(model="simple_cnn", epochs=30, augment="flip,rotate=10,zoom=0.1"),
    "efficientnet_lite0 transfer (frozen, cached features, 30 epochs)":
        dict(model="efficientnet_lite0", pretrained=True, strategy="transfer", epochs=30),
    "efficientnet_lite0 finetune (head 10 epochs, then all stages 4 epochs at lr 1e-4)":
        dict(model="efficientnet_lite0", pretrained=True, strategy="finetune", epochs=10, finetune_epochs=4,
             finetune_lr=1e-4),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/data/hymenoptera"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-transfer"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    os.environ["CNNKIT_CACHE_DIR"] = str(args.out / "cache")  # a cold cache: the first epoch pays for the features
    rows = []
    for i, (name, settings) in enumerate(RUNS.items()):
        run = args.out / f"run{i}"
        start = time.perf_counter()
        result = train(args.data, run, TrainConfig(seed=args.seed, **settings), progress=False).result
        seconds = time.perf_counter() - start
        # The tutorial's protocol: accuracy on val/, the images that chose the epoch (so cnnkit must be told).
        m = evaluate(run, data=args.data / "val", include_seen=True, report=False).metrics
        record = RunFolder(run).read_record()
        rows.append({"name": name, "val_accuracy": m["accuracy"], "best_epoch": result.best_epoch + 1,
                     "epochs": result.epochs_run, "seconds": seconds, "epoch_seconds": list(result.epoch_seconds),
                     "cache": record.feature_cache and dataclasses.asdict(record.feature_cache)})
        print(rows[-1], file=sys.stderr, flush=True)
    # Head training without the cache: the frozen backbone runs on every image, every epoch.
    uncached = TrainConfig(model="efficientnet_lite0", pretrained=True, epochs=2, feature_cache=False,
                           seed=args.seed)
    train(args.data, args.out / "uncached", uncached, progress=False)
    slow = RunFolder(args.out / "uncached").read_record().result.epoch_seconds
    fast = rows[1]["epoch_seconds"]
    (args.out / "results.json").write_text(json.dumps({"runs": rows, "uncached_epoch_seconds": slow}, indent=2))

    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"date {time.strftime('%Y-%m-%d')}; seed {args.seed}\n")
    print("| run | validation accuracy | best epoch / epochs | wall time (s) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['val_accuracy']:.4f} | {r['best_epoch']} / {r['epochs']} | {r['seconds']:.0f} |")
    cached_median = statistics.median(fast[1:])
    print(f"\nHead epoch (train 244 + validate 153) without cache: {statistics.mean(slow):.2f} s; with cached features "
          f"from the second epoch on: median {cached_median * 1000:.1f} ms; ratio {statistics.mean(slow) / cached_median:.0f}x. "
          f"Computing the cache (one frozen forward pass per image): {rows[1]['cache']}")


if __name__ == "__main__":
    main()
