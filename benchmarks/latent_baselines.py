"""Baselines beside CNNs on the same split, and retrieval speed: the table of issue 6.

For digits, wafers and hymenoptera: k-NN on pixels, a softmax on pixels, hand-crafted features (each with its settings
chosen by 5-fold cross-validation on train+val), simple_cnn from scratch, k-NN (k=5) in that CNN's latent space, and for
hymenoptera a frozen EfficientNet-Lite0 with k-NN in its latent space. Then FAISS on 100,000 vectors of dimension 1280:
exact and IVF search latency and the IVF index's recall@10.

    python benchmarks/latent_baselines.py --hymenoptera ../shared/data/hymenoptera --out /tmp/cnnkit-latent

Data, not in this repository: hymenoptera, the ants-and-bees set of PyTorch's transfer-learning tutorial
(https://download.pytorch.org/tutorial/hymenoptera_data.zip, unzipped: train/ and val/), by default in
../shared/data/hymenoptera. Without it the script says so in one line and exits 0. `--retrieval-only` needs no data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from _data import HYMENOPTERA
from cnnkit import TrainConfig, evaluate, export_dataset, train, train_baseline
from cnnkit.latent.index import build_faiss_index, recall_at_k


def hymenoptera_with_test(source: Path, out: Path) -> Path:
    """train/ stays train (validation is carved from it); the original val/ becomes the test split."""
    out.mkdir(parents=True)
    (out / "train").symlink_to(source.resolve() / "train")
    (out / "test").symlink_to(source.resolve() / "val")
    return out


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def table_rows(name: str, data: Path, out: Path, cnn: dict, transfer: bool) -> list[dict]:
    rows = []
    for method in ("knn", "linear", "handcrafted"):
        result, seconds = timed(lambda: train_baseline(data, out / f"{name}-{method}", method=method))
        test = evaluate(result.run_dir, report=False).metrics
        rows.append({"data": name, "method": f"baseline {method}", "accuracy": test["accuracy"],
                     "balanced_accuracy": test["balanced_accuracy"], "seconds": seconds})
        print(rows[-1], file=sys.stderr, flush=True)
    runs = [("simple_cnn from scratch", out / f"{name}-cnn", TrainConfig(**cnn))]
    if transfer:
        runs.append(("efficientnet_lite0 transfer", out / f"{name}-lite0",
                     TrainConfig(model="efficientnet_lite0", pretrained=True, epochs=30)))
    for label, run, config in runs:
        _, seconds = timed(lambda: train(data, run, config, progress=False))
        test = evaluate(run, report=False).metrics
        rows.append({"data": name, "method": label, "accuracy": test["accuracy"],
                     "balanced_accuracy": test["balanced_accuracy"], "seconds": seconds})
        knn, knn_seconds = timed(lambda: evaluate(run, out=out / f"{run.name}-knn", knn=5, report=False))
        rows.append({"data": name, "method": f"k-NN (k=5) in the latent space of {label.split()[0]}",
                     "accuracy": knn.metrics["knn"]["accuracy"],
                     "balanced_accuracy": knn.metrics["knn"]["balanced_accuracy"], "seconds": knn_seconds})
        print(rows[-2:], file=sys.stderr, flush=True)
    return rows


def retrieval(n: int = 100_000, dim: int = 1280, queries: int = 1000, seed: int = 0, spread: float = 0.5) -> dict:
    """Vectors around 1,000 centres (``spread`` is the noise's std against the centres' 1): clustered like the
    features of a trained network at 0.5, nearly structureless at 3; queries are perturbed members."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(1000, dim)).astype(np.float32)
    vectors = centres[rng.integers(0, 1000, n)] + spread * rng.normal(size=(n, dim)).astype(np.float32)
    q = vectors[rng.permutation(n)[:queries]] + 0.1 * rng.normal(size=(queries, dim)).astype(np.float32)
    out = {}
    exact, build_exact = timed(lambda: build_faiss_index(vectors, "l2", "flat"))
    ivf, build_ivf = timed(lambda: build_faiss_index(vectors, "l2", "ivf"))
    for name, index, build in (("exact (IndexFlatL2)", exact, build_exact), ("IVF (IndexIVFFlat)", ivf, build_ivf)):
        _, batch = timed(lambda: index.search(q, 10))
        _, single = timed(lambda: [index.search(q[i:i + 1], 10) for i in range(100)])
        out[f"{name}, spread {spread}"] = {"build_s": build, "batch_ms_per_query": 1000 * batch / queries,
                     "single_query_ms": 1000 * single / 100,
                     "recall_at_10": recall_at_k(index, exact, q[:200], 10),
                     "nlist": getattr(index, "nlist", None), "nprobe": getattr(index, "nprobe", None)}
        print(name, spread, file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hymenoptera", type=Path, default=HYMENOPTERA.default)
    parser.add_argument("--out", type=Path, default=Path("/tmp/cnnkit-latent"))
    parser.add_argument("--retrieval-only", action="store_true", help="only the FAISS table")
    args = parser.parse_args()
    if args.retrieval_only:
        print_retrieval({**retrieval(spread=0.5), **retrieval(spread=3.0)})
        return
    if HYMENOPTERA.missing(args.hymenoptera, "--hymenoptera"):
        return
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    os.environ.setdefault("CNNKIT_CACHE_DIR", str(args.out / "cache"))
    export_dataset("digits", args.out / "digits")
    export_dataset("wafers", args.out / "wafers")
    datasets = [("digits", args.out / "digits", {"model": "simple_cnn"}, False),
                ("wafers", args.out / "wafers", {"model": "simple_cnn", "epochs": 30}, False),
                ("hymenoptera", hymenoptera_with_test(args.hymenoptera, args.out / "hymenoptera"),
                 {"model": "simple_cnn", "epochs": 30, "augment": "flip,rotate=10,zoom=0.1"}, True)]
    rows = [row for name, data, cnn, transfer in datasets for row in table_rows(name, data, args.out, cnn, transfer)]
    search = {**retrieval(spread=0.5), **retrieval(spread=3.0)}
    (args.out / "results.json").write_text(json.dumps({"rows": rows, "retrieval": search}, indent=2))
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"date {time.strftime('%Y-%m-%d')}; split seed 0\n")
    print("| data | method | test accuracy | balanced accuracy | time (s) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['data']} | {r['method']} | {r['accuracy']:.4f} | {r['balanced_accuracy']:.4f} | "
              f"{r['seconds']:.1f} |")
    print_retrieval(search)


def print_retrieval(search: dict) -> None:
    print("\n| FAISS, 100,000 x 1280, k=10 | build (s) | batch of 1000: ms per query | one query (ms) | recall@10 |")
    print("|---|---|---|---|---|")
    for name, r in search.items():
        print(f"| {name} | {r['build_s']:.2f} | {r['batch_ms_per_query']:.3f} | {r['single_query_ms']:.2f} | "
              f"{r['recall_at_10']:.3f} |")


if __name__ == "__main__":
    main()
