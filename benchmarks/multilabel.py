"""Multi-label on the built-in mixed wafers: what a CNN reaches on images it never saw, whether the per-class thresholds
chosen on validation beat 0.5 on the test split, and a linear model on pixels (one-vs-rest logistic regression,
C chosen by 3-fold cross-validation on train+val) on the same split as the floor to beat.

    python benchmarks/multilabel.py --out /tmp/cnnkit-multilabel [--seeds 0 1 2] [--models simple_cnn vgg_small]

Each seed draws a new data set (600 maps: 20 label sets x 30) and a new split. Reported per model: the median over
seeds of exact-set accuracy, samples F1 and macro F1 with the stored thresholds and with 0.5, and mean AP.

Data: the built-in mixed wafers; nothing from outside this repository.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CNNKIT = [sys.executable, "-m", "cnnkit.cli", "-q"]


def scores(truth: np.ndarray, probabilities: np.ndarray, thresholds, classes) -> dict:
    from cnnkit.evaluation.metrics import multilabel_metrics

    m = multilabel_metrics(truth, probabilities >= np.asarray(thresholds), probabilities, classes)
    return {k: m[k] for k in ("accuracy", "samples_f1", "macro_f1", "mean_average_precision")}


def test_split(run: Path):
    from cnnkit.inference import Predictor
    from cnnkit.run import RunFolder

    predictor = Predictor.load(run, backend="torch")
    test = RunFolder(run).load_split("test", predictor.classes, predictor.preprocessing, multi_label=True)
    return predictor, test


def network(data: Path, out: Path, model: str) -> dict:
    start = time.perf_counter()
    subprocess.run([*CNNKIT, "train", str(data / "labels.csv"), "--model", model, "--out", str(out),
                    "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    predictor, test = test_split(out)
    p = predictor.predict_arrays(test.images)
    return {"tuned": scores(test.labels, p, predictor.thresholds, predictor.classes),
            "at_0.5": scores(test.labels, p, [0.5] * len(predictor.classes), predictor.classes),
            "thresholds": dict(zip(predictor.classes, predictor.thresholds)), "seconds": round(seconds, 1)}


def pixels(run: Path) -> dict:
    """One-vs-rest logistic regression on the standardised pixels of the run's own split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from cnnkit.run import RunFolder

    predictor, test = test_split(run)
    folder = RunFolder(run)
    parts = [folder.load_split(s, predictor.classes, predictor.preprocessing, multi_label=True)
             for s in ("train", "val")]
    x = np.concatenate([p.images for p in parts]).reshape(sum(len(p) for p in parts), -1) / 255.0
    y = np.concatenate([p.labels for p in parts]).astype(int)
    model = GridSearchCV(make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(max_iter=2000))),
                         {"onevsrestclassifier__estimator__C": [0.001, 0.01, 0.1, 1.0]}, cv=3, scoring="f1_samples")
    model.fit(x, y)
    p = model.predict_proba(test.images.reshape(len(test), -1) / 255.0)
    return {"at_0.5": scores(test.labels, p, [0.5] * len(predictor.classes), predictor.classes),
            "C": model.best_params_["onevsrestclassifier__estimator__C"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-multilabel"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=["simple_cnn", "vgg_small"])
    args = parser.parse_args()
    from cnnkit.data.builtin import export_dataset

    results = []
    for seed in args.seeds:
        data = args.out / f"data-{seed}"
        if not (data / "labels.csv").exists():
            export_dataset("wafers-mixed", data, seed=seed)
        row = {"seed": seed}
        for model in args.models:
            run = args.out / f"{model}-{seed}"
            if run.exists():
                subprocess.run(["rm", "-rf", str(run)], check=True)
            row[model] = network(data, run, model)
        row["pixels_logistic"] = pixels(args.out / f"{args.models[0]}-{seed}")
        results.append(row)
        print(json.dumps(row), flush=True)
    print("\nmedian over seeds", args.seeds)
    print(f"{'model':<22}{'rule':<12}{'exact-set':>10}{'samples F1':>12}{'macro F1':>10}{'mean AP':>9}")
    for model in [*args.models, "pixels_logistic"]:
        for rule in ("tuned", "at_0.5"):
            if rule not in results[0][model]:
                continue
            med = {k: float(np.median([r[model][rule][k] for r in results])) for k in results[0][model][rule]}
            print(f"{model:<22}{rule:<12}{med['accuracy']:>10.3f}{med['samples_f1']:>12.3f}{med['macro_f1']:>10.3f}"
                  f"{med['mean_average_precision']:>9.3f}")
    (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
