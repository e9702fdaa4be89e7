"""Transfer learning against its references, on the same split per seed: the linear probe, the transfer run (head
solved to the optimum, mirror-averaged features when cross-validation prefers them), fine-tuning with cnnkit's
recipe, `--auto` within a budget, and (optionally) a scratch CNN and the head trained epoch by epoch.

    python benchmarks/transfer.py --data ../shared/data/hymenoptera --out /tmp/cnnkit-transfer --seeds 0,1,2
    python benchmarks/transfer.py --data ../shared/data/sealions/patches --out /tmp/cnnkit-sl \
        --rows probe,transfer,finetune

The data has train/ and val/ only. Since issue 13 cnnkit refuses to score the images that chose the kept epoch, and
since issue 14 the solved head uses train+val: so val/ serves as the test split here (see held_out_layout), scored once,
never seen by training or by any choice. The PyTorch tutorial's numbers (validation accuracy, best epoch chosen on
val/) are optimistic by comparison.

Data, not in this repository: hymenoptera, the ants-and-bees set of PyTorch's transfer-learning tutorial
(https://download.pytorch.org/tutorial/hymenoptera_data.zip, unzipped), by default in ../shared/data/hymenoptera; or
the sea-lion patches (../shared/data/sealions/patches), cut from NOAA Fisheries' Steller sea lion count (Kaggle, 2017:
https://www.kaggle.com/c/noaa-fisheries-steller-sea-lion-population-count; see ../shared/data/README.md). Without
them the script says so in one line and exits 0.
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

from _data import HYMENOPTERA, SEALIONS
from cnnkit import RunFolder, TrainConfig, evaluate, train, train_baseline

RUNS = {
    "scratch": ("simple_cnn from scratch (64x64, 30 epochs, flip augmentation)",
                dict(model="simple_cnn", epochs=30, augment="flip,rotate=10,zoom=0.1")),
    "transfer": ("efficientnet_lite0 transfer, head solved (L-BFGS, C by cross-validation)",
                 dict(model="efficientnet_lite0", pretrained=True, strategy="transfer")),
    "epochs": ("efficientnet_lite0 transfer, head trained 30 epochs (--head-solver epochs)",
               dict(model="efficientnet_lite0", pretrained=True, strategy="transfer", head_solver="epochs",
                    epochs=30)),
    "finetune": ("efficientnet_lite0 finetune (solved head, then all stages 5 epochs, cnnkit's recipe)",
                 dict(model="efficientnet_lite0", pretrained=True, strategy="finetune")),
}


def held_out_layout(data: Path, out: Path) -> Path:
    """train/ as the data's train/, and its val/ as test/ when the data has no test/: validation is carved from
    train/, and the images of test/ are scored once, never seen by training or by any choice (epoch, C, recipe)."""
    if (data / "test").is_dir():
        return data
    layout = out / "data"
    layout.mkdir(parents=True)
    (layout / "train").symlink_to((data / "train").resolve(), target_is_directory=True)
    (layout / "test").symlink_to((data / "val").resolve(), target_is_directory=True)
    return layout


def measure(name: str, run: Path, fit) -> dict:
    start = time.perf_counter()
    trained = fit()
    seconds = time.perf_counter() - start
    m = evaluate(run, report=False).metrics
    record = RunFolder(run).read_record()
    result = record.result
    row = {"name": name, "test_accuracy": m["accuracy"], "n": m["n"],
           "best_epoch": None if result.best_epoch is None else result.best_epoch + 1, "epochs": result.epochs_run,
           "seconds": seconds, "epoch_seconds": list(result.epoch_seconds),
           "val_accuracy": result.best_val_acc,
           "kept": (record.recipe or {}).get("kept"),
           "flip_average": bool(result.phases and (result.phases[0].solver or {}).get("flip_average"))}
    del trained
    print(row, file=sys.stderr, flush=True)
    return row


def one_seed(data: Path, out: Path, seed: int, rows: list[str], budget: str) -> list[dict]:
    from cnnkit.recipes import auto_train

    found = []
    for key in rows:
        run = out / f"{key}-seed{seed}"
        if key == "probe":
            found.append(measure("linear probe (cnnkit baseline --method probe)", run,
                                 lambda: train_baseline(data, run, method="probe", seed=seed)))
        elif key == "auto":
            found.append(measure(f"--auto --budget {budget}", run,
                                 lambda: auto_train(data, run, TrainConfig(seed=seed), budget=budget,
                                                    progress=False)))
        else:
            name, settings = RUNS[key]
            found.append(measure(name, run, lambda settings=settings: train(
                data, run, TrainConfig(seed=seed, **settings), progress=False)))
        found[-1]["key"] = key
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=HYMENOPTERA.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-transfer"))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--rows", default="probe,transfer,finetune,auto")
    parser.add_argument("--budget", default="10m")
    args = parser.parse_args()
    if (SEALIONS if "sealion" in args.data.as_posix() else HYMENOPTERA).missing(args.data, holds=("train", "val")):
        return
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    os.environ["CNNKIT_CACHE_DIR"] = str(args.out / "cache")  # a cold cache: the first run pays for the features
    data = held_out_layout(args.data, args.out)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        rows += [{**r, "seed": seed} for r in one_seed(data, args.out, seed, args.rows.split(","), args.budget)]
        (args.out / "results.json").write_text(json.dumps({"runs": rows}, indent=2))
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"date {time.strftime('%Y-%m-%d')}; data {args.data}; seeds {args.seeds}\n")
    print(f"| run | test accuracy per seed (n={rows[0]['n']}) | median | wall time per seed (s) | notes |")
    print("|---|---|---|---|---|")
    for key in args.rows.split(","):
        mine = [r for r in rows if r["key"] == key]
        notes = ", ".join(sorted({f"kept {r['kept']}" for r in mine if r["kept"]}
                                 | {"mirror-averaged" for r in mine if r["flip_average"]}))
        accuracies = " / ".join(f"{r['test_accuracy']:.4f}" for r in mine)
        seconds = " / ".join(f"{r['seconds']:.0f}" for r in mine)
        median = statistics.median(r["test_accuracy"] for r in mine)
        print(f"| {mine[0]['name']} | {accuracies} | {median:.4f} | {seconds} | {notes} |")

if __name__ == "__main__":
    main()
