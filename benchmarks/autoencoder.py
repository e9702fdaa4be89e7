"""Autoencoders (issue 21): anomaly detection on the built-in wafers, and the latent k-NN of an autoencoder's codes.

Anomalies: for each seed, the wafers set is drawn anew; a conv_autoencoder trains on its `none` maps only (split
70/15/15 as any run), its threshold comes from their validation split, and `cnnkit anomaly` scores the held-out
`none` maps (the run's test split) against every defect map: ROC AUC of defect against normal (the goal: >= 0.9),
and at the stored threshold the share of defects caught and of normal maps flagged. The score is the mean squared
reconstruction error; the ROC AUC of the error map's peak (its largest smoothed value) is shown beside it.

Latent k-NN: a conv_autoencoder trains on all images of wafers and of digits (labels ignored); k-NN on its codes
against k-NN on standardised pixels, on the same split, k chosen by 5-fold cross-validation on train+val for each,
accuracy on the test split.

    python benchmarks/autoencoder.py --out /tmp/cnnkit-autoencoder [--seeds 0 1 2] [--epochs 40]

Data: the built-in wafers and digits; nothing from outside this repository.
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

CNNKIT = [sys.executable, "-m", "cnnkit.cli", "-q"]


def train(data: Path, run: Path, epochs: int, seed: int) -> float:
    shutil.rmtree(run, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([*CNNKIT, "train", str(data), "--model", "conv_autoencoder", "--out", str(run), "--epochs",
                    str(epochs), "--seed", str(seed), "--lr", "0.003", "--no-progress"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def anomaly(out: Path, seed: int, epochs: int) -> dict:
    """Train on `none` only; score its test split and every defect map."""
    from sklearn.metrics import roc_auc_score

    from cnnkit.data.builtin import export_dataset
    from cnnkit.run import RunFolder

    data = out / f"wafers-{seed}"
    if not data.exists():
        export_dataset("wafers", data, seed=seed)
    normal, scored = out / f"normal-{seed}", out / f"scored-{seed}"
    for folder in (normal, scored):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(data / "none", normal / "none")
    run = out / f"ae-none-{seed}"
    seconds = train(normal, run, epochs, seed)
    (scored / "none").mkdir(parents=True)
    for path, _ in RunFolder(run).read_split().splits["test"]:  # the held-out normal maps
        shutil.copy(normal / path, scored / "none" / Path(path).name)
    for kind in sorted(p.name for p in data.iterdir() if p.is_dir() and p.name != "none"):
        shutil.copytree(data / kind, scored / kind)
    answer = subprocess.run([*CNNKIT, "anomaly", str(run), str(scored), "--normal", "none", "--no-maps", "--json",
                             "--out", str(out / f"anomaly-{seed}")], check=True, capture_output=True, text=True)
    rows = json.loads(answer.stdout)
    summary = json.loads((out / f"anomaly-{seed}" / "anomaly.json").read_text())
    defect = np.array([r["class"] != "none" for r in rows])
    flagged = np.array([r["anomalous"] for r in rows])
    peaks = peak_auc(run, rows, defect)
    return {"seed": seed, "roc_auc": summary["roc_auc"], "peak_roc_auc": peaks,
            "caught": float(flagged[defect].mean()), "false_alarms": float(flagged[~defect].mean()),
            "normal_test": int((~defect).sum()), "defects": int(defect.sum()), "threshold": summary["threshold"],
            "val_error": summary["val_error"], "train_seconds": round(seconds, 1),
            "check": float(roc_auc_score(defect, [r["error"] for r in rows]))}


def peak_auc(run: Path, rows: list[dict], defect: np.ndarray) -> float:
    """ROC AUC of each image's largest smoothed error-map value instead of its mean error."""
    from sklearn.metrics import roc_auc_score

    from cnnkit.inference import Predictor
    from cnnkit.inference.reconstruction import reconstruction_errors

    predictor = Predictor.load(run, backend="torch")
    images = predictor.load_images([r["path"] for r in rows])
    _, maps = reconstruction_errors(images, predictor.reconstruct_arrays(images))
    return float(roc_auc_score(defect, maps.reshape(len(maps), -1).max(axis=1)))


def knn_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> tuple:
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    search = GridSearchCV(make_pipeline(StandardScaler(), KNeighborsClassifier()),
                          {"kneighborsclassifier__n_neighbors": [1, 3, 5, 7, 9]}, cv=5)
    search.fit(train_x, train_y)
    return float((search.predict(test_x) == test_y).mean()), search.best_params_["kneighborsclassifier__n_neighbors"]


def latent_knn(out: Path, name: str, epochs: int) -> dict:
    """An autoencoder on every image of ``name`` (labels ignored); k-NN on its codes and on pixels, same split."""
    from cnnkit.data.builtin import export_dataset
    from cnnkit.inference import Predictor
    from cnnkit.run import RunFolder

    data = out / f"{name}-all"
    if not data.exists():
        export_dataset(name, data, seed=0)
    run = out / f"ae-{name}"
    seconds = train(data, run, epochs, 0)
    predictor = Predictor.load(run, backend="torch")
    folder = RunFolder(run)
    parts = {s: folder.load_split(s, predictor.classes, predictor.preprocessing) for s in ("train", "val", "test")}
    fit_images = np.concatenate([parts["train"].images, parts["val"].images])
    fit_labels = np.concatenate([parts["train"].labels, parts["val"].labels])
    test = parts["test"]
    codes = knn_accuracy(predictor.embed_arrays(fit_images), fit_labels, predictor.embed_arrays(test.images),
                         test.labels)
    pixels = knn_accuracy(fit_images.reshape(len(fit_images), -1) / 255.0, fit_labels,
                          test.images.reshape(len(test), -1) / 255.0, test.labels)
    record = folder.read_record()
    return {"data": name, "codes_acc": codes[0], "codes_k": codes[1], "pixels_acc": pixels[0], "pixels_k": pixels[1],
            "code_size": record.reconstruction.code_size, "pixel_values": record.reconstruction.pixels,
            "val_error": record.reconstruction.val_error, "test_images": len(test), "train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-autoencoder"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--knn-epochs", type=int, default=30)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = []
    for seed in args.seeds:
        rows.append(anomaly(args.out, seed, args.epochs))
        print(json.dumps(rows[-1]), flush=True)
    knn = []
    for name in ("wafers", "digits"):
        knn.append(latent_knn(args.out, name, args.knn_epochs))
        print(json.dumps(knn[-1]), flush=True)
    print(f"\nAnomalies (wafers, trained on none only), median of seeds {args.seeds}:")
    for key in ("roc_auc", "peak_roc_auc", "caught", "false_alarms"):
        print(f"  {key:<14}{np.median([r[key] for r in rows]):.3f}   per seed: "
              + ", ".join(f"{r[key]:.3f}" for r in rows))
    print("\nk-NN accuracy on the test split (autoencoder codes vs standardised pixels):")
    for r in knn:
        print(f"  {r['data']:<8} codes ({r['code_size']} numbers) {r['codes_acc']:.3f} (k={r['codes_k']})   pixels "
              f"({r['pixel_values']}) {r['pixels_acc']:.3f} (k={r['pixels_k']})   n={r['test_images']}")
    print(f"\nTotal {time.perf_counter() - start:.0f} s")
    (args.out / "results.json").write_text(json.dumps({"anomaly": rows, "knn": knn}, indent=1))


if __name__ == "__main__":
    main()
