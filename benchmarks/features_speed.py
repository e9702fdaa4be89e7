"""Feature extraction speed: cnnkit's features from JPEG files end to end (decoding overlapped with ONNX Runtime)
against raw ONNX Runtime on the same decoded images and against the torch path it replaced (issue 34).

    python benchmarks/features_speed.py --data ../shared/data/hymenoptera --results

The frozen EfficientNet-Lite0 (ImageNet weights, a base dependency) at 224x224, on every JPEG under --data (or
--images of them, spread over its folders). Measured in one process, interleaved within each round, median of
--repeats rounds (a noisy machine slows all of them alike):
- raw ONNX Runtime float32 on the decoded images, batch 32: the reference;
- cnnkit's feature extraction from the JPEG files, end to end (`cnnkit features`' path: `Predictor.embed_files`
  through `latent.embedding`: threads decode the next batches while ONNX Runtime runs this one);
- the same through torch float32, as cnnkit ran it before (channels_last, inference_mode);
- the feature cache on the decoded images (cold: hashing, ONNX Runtime, writing the entries);
- torch float32 and bfloat16 autocast on the decoded images (bf16 on --bf16-images only: without native bf16 it
  crawls);
- decoding alone (the worker threads).
Also: seconds to export and check the graph (once per backbone), the largest difference from torch, and whether a
linear head solved on torch's features gives the same classes on ONNX Runtime's.

Data, not in this repository: hymenoptera, the ants-and-bees set of PyTorch's transfer-learning tutorial
(https://download.pytorch.org/tutorial/hymenoptera_data.zip, unzipped: train/ and val/), by default in
../shared/data/hymenoptera. Without it the script says so in one line and exits 0. The machine is shared: the load
average before and after is recorded. `--results` writes the tables to benchmarks/results/features_speed.json, from
which `python -m benchmarks report` writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _data import HYMENOPTERA
from _results import add_option, command_line, record

SPEEDS = [{"key": "path", "label": "path, same images"}, {"key": "images_per_s", "label": "images/s"},
          {"key": "ratio_raw", "label": "x raw ONNX Runtime", "format": "{:.2f}"},
          {"key": "ratio_torch", "label": "x torch end to end", "format": "{:.2f}"}]
CHECKS = [{"key": "check", "label": "check"}, {"key": "value", "label": "value"}]


def lite0():
    """EfficientNet-Lite0 with ImageNet weights and its preprocessing; a torch predictor over it."""
    import torch

    from cnnkit.data.preprocess import Preprocessing
    from cnnkit.inference.network import NetworkPredictor
    from cnnkit.models import create_model
    from cnnkit.models.pretrained import load_pretrained, pretrained_normalization
    from cnnkit.models.transfer import backbone_config

    model = create_model("efficientnet_lite0", 2, 3)
    load_pretrained(model, "efficientnet_lite0")
    cfg = backbone_config("efficientnet_lite0")
    mean, std = pretrained_normalization("efficientnet_lite0")
    prep = Preprocessing(tuple(cfg["input_size"][1:]), 3, tuple(mean), tuple(std), "bilinear", cfg["crop_pct"])
    return NetworkPredictor(model.eval().to(memory_format=torch.channels_last), ["a", "b"], prep)


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    out = function()
    return time.perf_counter() - start, out


def cold(function):
    """``function`` as a fresh process runs it: the corrupt-JPEG check each file gets once per process (a second
    decoding, ~a quarter of the decoding time) is forgotten first."""
    from cnnkit.data import decode

    decode._file_complaint.cache_clear()
    return function


def torch_arrays(model, images: np.ndarray, prep, bf16: bool = False, batch: int = 32) -> np.ndarray:
    import torch

    from cnnkit.data.preprocess import normalize

    out = []
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i:i + batch]).permute(0, 3, 1, 2).float() / 255.0
            out.append(model.pool(model.forward_features(normalize(x, prep))).float())
    return torch.cat(out).numpy()


def same_classes(paths: list[Path], ort: np.ndarray, reference: np.ndarray) -> float:
    """A linear head solved on torch's features of train/ (ants against bees): the share of val/ images ONNX
    Runtime's features give the same class as torch's."""
    from cnnkit.models.linear_head import choose_by_cv, fit_softmax

    labels = np.array([p.parent.name for p in paths])
    train = np.array(["train" in p.parts for p in paths])
    classes = sorted(set(labels))
    y = np.array([classes.index(c) for c in labels])
    if len(classes) < 2 or train.all() or not train.any():
        return float("nan")
    C, _ = choose_by_cv(reference[train], y[train], len(classes), seed=0)
    fit, _ = fit_softmax(reference[train], y[train], len(classes), C)
    return float((fit.probabilities(ort[~train]).argmax(1) == fit.probabilities(reference[~train]).argmax(1)).mean())


def measure(paths: list[Path], repeats: int, bf16_images: int) -> dict:
    from cnnkit.inference.stream import decoded_batches
    from cnnkit.latent.embedding import OnnxEmbeddings, embedding_predictor

    predictor = lite0()
    prep, model = predictor.preprocessing, predictor.model
    images = np.concatenate([b.images for b in decoded_batches(paths, prep, 32)])
    fast = embedding_predictor(predictor, len(paths))
    if not isinstance(fast, OnnxEmbeddings):
        raise SystemExit("onnxruntime is not installed: nothing to compare")
    export_seconds, _ = timed(lambda: fast.embed_arrays(images[:8]))  # exported and checked here
    cold_cache(model, images[:8], prep, "onnxruntime")  # the feature cache's graph (pooled features), exported
    graph = fast.graph
    runs = {
        "raw ONNX Runtime float32 on decoded images (batch 32)":
            lambda: np.concatenate([graph(images[i:i + 32]) for i in range(0, len(images), 32)]),
        "cnnkit features from JPEG, end to end (ONNX Runtime, decoding overlapped)":
            lambda: cold(fast.embed_files)(paths)[0],
        "cnnkit features from JPEG, end to end, before (torch float32)":
            lambda: cold(predictor.embed_files)(paths)[0],
        "feature cache on decoded images, cold (ONNX Runtime)": lambda: cold_cache(model, images, prep),
        "torch float32 on decoded images (batch 32)": lambda: torch_arrays(model, images, prep),
        f"torch bf16 autocast on decoded images ({bf16_images} of them)":
            lambda: torch_arrays(model, images[:bf16_images], prep, bf16=True),
        "decoding alone (worker threads)": lambda: [b.images for b in cold(decoded_batches)(paths, prep, 32)],
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    outputs = {}
    for _ in range(repeats):
        for name, run in runs.items():
            elapsed, outputs[name] = timed(run)
            seconds[name].append(elapsed)
    counts = {name: bf16_images if "bf16" in name else len(paths) for name in runs}
    speeds = {name: counts[name] / statistics.median(times) for name, times in seconds.items()}
    names = list(runs)
    ort, reference, bf16 = outputs[names[1]], outputs[names[4]], outputs[names[5]]
    return {"speeds": speeds, "names": names, "export_seconds": export_seconds,
            "difference": float(np.abs(ort - reference).max()),
            "relative": float(np.abs(ort - reference).max() / np.abs(reference).max()),
            "bf16_relative": float(np.abs(bf16 - reference[:bf16_images]).max() / np.abs(reference).max()),
            "same_classes": same_classes(paths, ort, reference), "cache_check": cache_check(outputs, names)}


def cold_cache(model, images: np.ndarray, prep, backend: str = "auto") -> np.ndarray:
    """The feature cache's path on decoded images, into an empty cache (its graph read from the benchmark's)."""
    from cnnkit.feature_cache import cached_features, default_cache_dir, graph_folder

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "graphs").symlink_to(graph_folder(default_cache_dir()), target_is_directory=True)
        features, stats = cached_features(model, images, prep, cache_dir=Path(folder), progress=False,
                                          backend=backend)
    if stats.backend != "onnxruntime":
        raise SystemExit(f"the feature cache computed with {stats.backend}, not ONNX Runtime")
    return features[:, 0].numpy()


def cache_check(outputs: dict, names: list[str]) -> float:
    return float(np.abs(outputs[names[3]] - outputs[names[1]]).max())


def tables(result: dict, loads: tuple[float, float], count: int) -> list[dict]:
    speeds, names = result["speeds"], result["names"]
    raw, torch_end = speeds[names[0]], speeds[names[2]]
    rows = [{"path": name, "images_per_s": round(speed, 1 if speed >= 10 else 2), "ratio_raw": round(speed / raw, 3),
             "ratio_torch": round(speed / torch_end, 3)} for name, speed in speeds.items()]
    checks = [
        ("images (JPEG files)", count),
        ("seconds to export the graph and check it against torch (once per backbone and input setting)",
         round(result["export_seconds"], 1)),
        ("largest |ONNX Runtime - torch|, pooled features", f"{result['difference']:.2g}"),
        ("same, relative to the largest |feature|", f"{result['relative']:.2g}"),
        ("bf16 autocast's largest difference, relative", f"{result['bf16_relative']:.2g}"),
        ("same class with a head solved on torch's features (val/)", round(result["same_classes"], 4)),
        ("feature cache against end to end, largest difference", f"{result['cache_check']:.2g}"),
        ("load average (1 min) before, after", f"{loads[0]:.2f}, {loads[1]:.2f}"),
    ]
    return [{"id": "speeds", "columns": SPEEDS, "rows": rows},
            {"id": "checks", "columns": CHECKS, "rows": [{"check": c, "value": v} for c, v in checks]}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HYMENOPTERA.default)
    parser.add_argument("--images", type=int, default=0, help="the first N JPEGs only (0: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bf16-images", type=int, default=16)
    add_option(parser, "features_speed")
    args = parser.parse_args()
    if HYMENOPTERA.missing(args.data):
        return 0
    paths = sorted(p for p in args.data.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    if args.images:  # spread over the folders: train/ and val/, ants and bees
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, min(args.images, len(paths))).astype(int)]
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as cache:  # graphs exported afresh, the user's cache left alone
        os.environ["CNNKIT_CACHE_DIR"] = cache
        (Path(cache) / "features" / "graphs").mkdir(parents=True)
        result = measure(paths, args.repeats, args.bf16_images)
    loads = (before, os.getloadavg()[0])
    found = tables(result, loads, len(paths))
    for row in found[0]["rows"]:
        print(f"{row['images_per_s']:8.1f} images/s  {row['ratio_raw']:5.2f}x raw ORT  "
              f"{row['ratio_torch']:5.2f}x torch  {row['path']}")
    for row in found[1]["rows"]:
        print(f"{row['check']}: {row['value']}")
    if args.results:
        record(args.results, "features_speed", found, command_line(__file__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
