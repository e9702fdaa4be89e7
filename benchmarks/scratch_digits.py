"""Small images from scratch against the pretrained route: the built-in digits (scikit-learn's 1,797 real 8x8
handwritten digits) with 10, 30 and 100 labelled images per class, every other image as the test split.

    nice -n 19 python benchmarks/scratch_digits.py --out /tmp/cnnkit-digits --results

Per size and seed the labelled images are drawn per class (seeded); validation is carved from them as `--auto` does (15%
of each class, at least one image), and every image not drawn is the test split, scored once. Recipes from scratch (the
network, its width and depth, augmentation, epochs) and the pretrained route on the same split (EfficientNet-Lite0's
ImageNet features of the digits upscaled to 224 px: the linear probe and the transfer run, its head solved); `--auto`'s
scratch candidate before issue 35 (`before`) and after (`longer`). By default those four; `--recipes` adds `augment`
(augmentation without more epochs), `wider` and `deeper` (vgg_small), measured at 10 and 30 labels per class with
`--per-class 10 30 --recipes before,augment,longer,wider,deeper,probe,transfer`. Reported: test accuracy (the median
over seeds where there are several), validation accuracy (what `--auto` ranks by), and the wall time of training (one
job at a time, `nice -n 19`, on a shared machine: compare times within the table only). A cold feature cache in OUT: the
first pretrained run pays for the features of every image, the later sizes reuse them. Then the same recipes on small
colour images: the built-in aerial patches (24x24 RGB; boat, car, tree, background; train/ and val/, 48 per class,
labelled, test/'s 48 scored), seed 0.

Data: the built-in digits and aerial patches; nothing from outside this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from _results import add_option, command_line, record

DIGITS = "rotate=10,translate=0.1,zoom=0.1,shear=5"  # no flips: a mirrored 2 is not a 2
AUGMENTED = {"epochs": 60, "early_stopping": 20, "augment": DIGITS}
RECIPES = {
    "before": ("scratch: simple_cnn, 20 epochs (`--auto`'s candidate before issue 35)",
               {"model": "simple_cnn", "epochs": 20}),
    "augment": ("scratch: simple_cnn, 20 epochs, augmentation",
                {"model": "simple_cnn", "epochs": 20, "augment": DIGITS}),
    "longer": ("scratch: simple_cnn, 60 epochs, augmentation", {"model": "simple_cnn", **AUGMENTED}),
    "wider": ("scratch: simple_cnn twice as wide (64, 128 filters, 256 dense), 60 epochs, augmentation",
              {"model": "simple_cnn", **AUGMENTED, "model_options": {"filters": [64, 128], "hidden": 256}}),
    "deeper": ("scratch: vgg_small (3 blocks of 2 convolutions), 60 epochs, augmentation",
               {"model": "vgg_small", **AUGMENTED}),
    "probe": ("pretrained: Lite0 linear probe (224 px)", None),
    "transfer": ("pretrained: Lite0 transfer, head solved (224 px)",
                 {"model": "efficientnet_lite0", "pretrained": True, "strategy": "transfer"}),
}
COLUMNS = [
    {"key": "recipe", "label": "recipe"},
    {"key": "labels", "label": "labels per class"},
    {"key": "test_accuracy", "label": "test accuracy", "format": "{:.4f}", "join": ", "},
    {"key": "median", "label": "median", "format": "{:.4f}"},
    {"key": "val_accuracy", "label": "validation accuracy", "format": "{:.3f}", "join": ", "},
    {"key": "seconds", "label": "training time (s)", "format": "{:.0f}", "join": ", "},
    {"key": "test_images", "label": "test images"},
]


def labelled_split(source: Path, out: Path, per_class: int, seed: int) -> Path:
    """out/train/<class>/: ``per_class`` images of each class drawn with ``seed``; out/test/<class>/: the rest."""
    if out.exists():
        return out
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.png"))
        order = np.random.default_rng(seed).permutation(len(files))
        for rank, index in enumerate(order):
            split = "train" if rank < per_class else "test"
            (out / split / folder.name).mkdir(parents=True, exist_ok=True)
            (out / split / folder.name / files[index].name).symlink_to(files[index].resolve())
    return out


def aerial_split(out: Path) -> Path:
    """The built-in aerial patches (24x24 colour, 4 classes): train/ and val/ as the labelled images, test/ kept."""
    from cnnkit import export_dataset

    export_dataset("aerial", out / "aerial-export")
    patches, data = out / "aerial-export" / "patches", out / "aerial"
    for split, target in (("train", "train"), ("val", "train"), ("test", "test")):
        for path in sorted((patches / split).glob("*/*.png")):
            (data / target / path.parent.name).mkdir(parents=True, exist_ok=True)
            (data / target / path.parent.name / f"{split}-{path.name}").symlink_to(path.resolve())
    return data


def measure(key: str, data: Path, run: Path, seed: int) -> dict:
    from cnnkit import RunFolder, TrainConfig, evaluate, train, train_baseline

    settings = RECIPES[key][1]
    start = time.perf_counter()
    if settings is None:
        train_baseline(data, run, method="probe", seed=seed)
    else:
        train(data, run, TrainConfig(seed=seed, **settings), progress=False, overwrite=True)
    seconds = time.perf_counter() - start
    metrics = evaluate(run, report=False).metrics
    record_ = RunFolder(run).read_record()
    val = (record_.cross_validation.cv_accuracy if record_.cross_validation else record_.result.best_val_acc)
    return {"key": key, "seed": seed, "test_accuracy": metrics["accuracy"], "n": metrics["n"],
            "val_accuracy": val, "seconds": round(seconds, 1)}


def rows_of(found: list[dict]) -> list[dict]:
    """One row per recipe and labelled set, in the order measured: test accuracy per seed and their median."""
    rows = []
    for labels in dict.fromkeys(r["labels"] for r in found):
        for key, (name, _) in RECIPES.items():
            mine = [r for r in found if r["key"] == key and r["labels"] == labels]
            if not mine:
                continue
            rows.append({"recipe": name, "labels": labels,
                         "test_accuracy": [r["test_accuracy"] for r in mine],
                         "median": statistics.median(r["test_accuracy"] for r in mine),
                         "val_accuracy": [r["val_accuracy"] for r in mine],
                         "seconds": [r["seconds"] for r in mine], "test_images": mine[0]["n"]})
    return rows


def report(found: list[dict], args) -> None:
    """Print the table; with --results, write it to the results file (with the command that measured it)."""
    rows = rows_of(found)
    print("\n| " + " | ".join(c["label"] for c in COLUMNS) + " |\n|" + "---|" * len(COLUMNS))
    for row in rows:
        print(f"| {row['recipe']} | {row['labels']} | {', '.join(f'{a:.4f}' for a in row['test_accuracy'])} | "
              f"{row['median']:.4f} | {', '.join(f'{a:.3f}' for a in row['val_accuracy'])} | "
              f"{', '.join(f'{s:.0f}' for s in row['seconds'])} | {row['test_images']} |")
    if args.results:
        command = command_line(__file__).replace(" --table", "")  # the command that measured the table
        tables = [{"id": "digits", "columns": COLUMNS, "rows": [r for r in rows if isinstance(r["labels"], int)]},
                  {"id": "colour", "columns": COLUMNS, "rows": [r for r in rows if not isinstance(r["labels"], int)]}]
        record(args.results, "scratch_digits", [t for t in tables if t["rows"]], command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-digits"))
    parser.add_argument("--per-class", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--recipes", default="before,longer,probe,transfer", help=f"of {', '.join(RECIPES)}")
    parser.add_argument("--aerial", default="before,longer,probe,transfer",
                        help="recipes run on the small colour aerial patches (none: '')")
    parser.add_argument("--cache", type=Path, help="the feature cache (default: a cold one in OUT)")
    parser.add_argument("--table", action="store_true", help="print the table from OUT/results.json; train nothing")
    add_option(parser, "scratch_digits")
    args = parser.parse_args()
    if args.table:
        report(json.loads((args.out / "results.json").read_text()), args)
        return
    from cnnkit import export_dataset

    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    os.environ["CNNKIT_CACHE_DIR"] = str(args.cache or args.out / "cache")  # cold: the first pretrained run pays
    source = args.out / "digits"
    export_dataset("digits", source)
    found = []
    for per_class in args.per_class:
        for seed in args.seeds:
            data = labelled_split(source, args.out / f"data-{per_class}-{seed}", per_class, seed)
            for key in args.recipes.split(","):
                row = {**measure(key, data, args.out / f"{key}-{per_class}-{seed}", seed), "labels": per_class}
                found.append(row)
                print(json.dumps(row), flush=True)
                (args.out / "results.json").write_text(json.dumps(found, indent=1))
    if args.aerial:
        data = aerial_split(args.out)
        for key in args.aerial.split(","):
            row = {**measure(key, data, args.out / f"{key}-aerial", 0), "labels": "48 (aerial)"}
            found.append(row)
            print(json.dumps(row), flush=True)
            (args.out / "results.json").write_text(json.dumps(found, indent=1))
    report(found, args)


if __name__ == "__main__":
    main()
