"""What averaging a frozen backbone's features over the image and its horizontal flip brings to the solved linear
head, and whether cnnkit's validation-only check (cross-validated accuracy on train+val, with and without the flip)
picks it where it helps: frozen EfficientNet-Lite0, C by 5-fold cross-validation on train+val, test scored once.

    python benchmarks/flip_features.py --out /tmp/cnnkit-flip [--data ../shared/data]

Data: hymenoptera (train/ as train+val, val/ as test), the sea-lion patches (train+val, test) and the built-in
digits and wafers (seeded 70/15/15 split). Handwritten digits are the case where a flip is not label-preserving.

Where to get the data that is not in this repository (`--sets digits,wafers` needs none): hymenoptera, the
ants-and-bees set of PyTorch's transfer-learning tutorial (https://download.pytorch.org/tutorial/hymenoptera_data.zip,
unzipped), and the sea-lion patches, cut from NOAA Fisheries' Steller sea lion count (Kaggle, 2017:
https://www.kaggle.com/c/noaa-fisheries-steller-sea-lion-population-count); --data is the folder holding
hymenoptera/ and sealions/ (by default ../shared/data, see ../shared/data/README.md). Without them the script says so
in one line and exits 0.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from _data import HYMENOPTERA, SEALIONS


def features(model, arrays, preprocessing, flip: bool):
    """Pooled features of the images (or of their mirror images) through cnnkit's feature cache: a rerun is fast."""
    from cnnkit.feature_cache import cached_features

    images = np.ascontiguousarray(arrays.images[:, :, ::-1]) if flip else arrays.images
    return cached_features(model, images, preprocessing, progress=False)[0][:, 0].numpy()


def splits_of(name: str, root: Path, work: Path):
    from cnnkit.data.builtin import export_dataset
    from cnnkit.data.prepare import prepare_training_data
    from cnnkit.models.pretrained import pretrained_normalization

    settings = dict(image_size=(224, 224), channels=3, interpolation="bicubic", crop_pct=0.875,
                    normalization=pretrained_normalization("efficientnet_lite0", None), seed=0,
                    val_fraction=0.15, test_fraction=0.15)
    if name == "hymenoptera":
        layout = work / "hymenoptera"
        layout.mkdir(parents=True, exist_ok=True)
        for src, dst in (("train", "train"), ("val", "test")):
            if not (layout / dst).exists():
                (layout / dst).symlink_to((root / "hymenoptera" / src).resolve(), target_is_directory=True)
        data = layout
    elif name == "sealions":
        data = root / "sealions" / "patches"
    else:
        data = work / name
        if not data.exists():
            export_dataset(name, data, seed=0)
    return prepare_training_data(data, **settings)


def measure(name: str, prepared, model) -> dict:
    from cnnkit.models.linear_head import choose_by_cv, fit_softmax

    s = prepared.splits
    fit_x = {f: np.concatenate([features(model, s["train"], prepared.preprocessing, f),
                                features(model, s["val"], prepared.preprocessing, f)]) for f in (False, True)}
    test_x = {f: features(model, s["test"], prepared.preprocessing, f) for f in (False, True)}
    y = np.concatenate([s["train"].labels, s["val"].labels])
    classes = len(prepared.classes)
    row = {"data": name, "fit_images": len(y), "test_images": len(s["test"])}
    for label, x, t in (("plain", fit_x[False], test_x[False]),
                        ("flip-averaged", (fit_x[False] + fit_x[True]) / 2, (test_x[False] + test_x[True]) / 2)):
        start = time.perf_counter()
        C, scores = choose_by_cv(x, y, classes)
        fit, _ = fit_softmax(x, y, classes, C)
        cv = max(s_["cv_acc"] for s_ in scores)
        row[label] = {"cv_accuracy": round(cv, 4), "test_accuracy": round(float(
            (fit.probabilities(t).argmax(1) == s["test"].labels).mean()), 4), "C": C,
            "seconds": round(time.perf_counter() - start, 1)}
    row["chosen_by_cv"] = "flip-averaged" if row["flip-averaged"]["cv_accuracy"] > row["plain"]["cv_accuracy"] \
        else "plain"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sets", default="hymenoptera,sealions,digits,wafers")
    args = parser.parse_args()
    sets = args.sets.split(",")
    if "hymenoptera" in sets and HYMENOPTERA.missing(args.data / "hymenoptera", "--data (the folder holding it)"):
        return
    if "sealions" in sets and SEALIONS.missing(args.data / "sealions", "--data (the folder holding it)",
                                                holds=("patches/train", "patches/val", "patches/test")):
        return
    from cnnkit.models import create_model
    from cnnkit.models.pretrained import load_pretrained

    model = create_model("efficientnet_lite0", 2, 3)
    load_pretrained(model, "efficientnet_lite0", None)
    model.eval()
    rows = []
    for name in sets:
        rows.append(measure(name, splits_of(name, args.data, args.out), model))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print("| data | fit / test images | plain: CV, test | flip-averaged: CV, test | chosen on CV |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['data']} | {r['fit_images']} / {r['test_images']} | {r['plain']['cv_accuracy']:.4f}, "
              f"{r['plain']['test_accuracy']:.4f} | {r['flip-averaged']['cv_accuracy']:.4f}, "
              f"{r['flip-averaged']['test_accuracy']:.4f} | {r['chosen_by_cv']} |")
    print(json.dumps({"machine": platform.machine(), "rows": rows}))


if __name__ == "__main__":
    main()
