"""Evaluate a run on its saved test split (never seen in training) or on another labelled folder."""

from __future__ import annotations

import time
from pathlib import Path

from cnnkit._io import write_json
from cnnkit.data.prepare import load_folder, load_samples
from cnnkit.errors import RunError
from cnnkit.evaluation.metrics import classification_metrics
from cnnkit.inference import Predictor
from cnnkit.run import RunFolder


def evaluate_run(run_dir: str | Path, data: str | Path | None = None, out: str | Path | None = None,
                 predictor: Predictor | None = None) -> tuple[dict, Path]:
    """Score the run's model; write ``metrics.json`` (in the run, or ``eval-<folder>/`` for other data).

    Returns the metrics and the path written.
    """
    run = RunFolder(run_dir)
    predictor = predictor or Predictor.load(run.path)
    classes, preprocessing = predictor.classes, predictor.preprocessing
    if data is None:
        manifest = run.read_split()
        if not manifest.splits.get("test"):
            raise RunError(f"Run {run.path} has no test split; pass --data FOLDER to evaluate on other images.")
        root = run.data_root(manifest)
        if not root.is_dir():
            raise RunError(f"The run's data folder {root} is gone; pass --data FOLDER to evaluate elsewhere.")
        arrays = load_samples(root, manifest.splits["test"], classes, preprocessing)
        source, target = f"test split of {root}", Path(out or run.path) / "metrics.json"
    else:
        arrays = load_folder(data, classes, preprocessing)
        source, target = str(Path(data).resolve()), Path(out or run.path / f"eval-{Path(data).resolve().name}") / (
            "metrics.json")
    start = time.perf_counter()
    probabilities = predictor.predict_arrays(arrays.images)
    seconds = time.perf_counter() - start
    metrics = classification_metrics(arrays.labels, probabilities, classes)
    metrics["data"] = source
    metrics["inference_ms_per_image"] = 1000.0 * seconds / max(len(arrays), 1)
    write_json(target, metrics)
    return metrics, target
