"""Latent retrieval at a million vectors: cnnkit's `ivf` and `ivfpq` indexes (what `cnnkit similar --index ...`
builds) on 1,000,000 x 1280 float32 vectors (EfficientNet-Lite0's feature size), against exact search.

    python benchmarks/retrieval_1m.py [--n 1000000] [--dim 1280]

Two kinds of vectors, queries being perturbed members:
- clusters: around 1,000 centres with isotropic noise (std 0.5 against the centres' 1) in all 1280 dimensions. A
  query's cluster-mates are then nearly equidistant from it: its 10 nearest are decided by small differences, the
  hardest case for compressed distances.
- manifold: a 64-dimensional Gaussian mapped linearly into 1280 dimensions, plus noise (std 0.05): a low intrinsic
  dimension, as a trained network's features have.
After building, cnnkit tunes the search (lists searched, and for ivfpq the candidates re-ranked) until recall@10 on
200 of the indexed vectors reaches 0.95, as `cnnkit similar` does. Reported: build and tuning time, the settings
chosen, the index's size per vector, ms per query one at a time and in a batch of 1,000, and recall@10 against exact
search (faiss.knn, brute force) on 1,000 other queries.

Data: generated vectors; nothing from outside this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np


def vectors(kind: str, n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    if kind == "clusters":
        centres = rng.standard_normal((1000, dim), dtype=np.float32)
    else:
        mapping = rng.standard_normal((64, dim), dtype=np.float32) / 8.0
    for start in range(0, n, 50_000):  # in float32 chunks: 5 GB, never 10
        stop = min(n, start + 50_000)
        if kind == "clusters":
            out[start:stop] = centres[rng.integers(0, 1000, stop - start)]
            out[start:stop] += 0.5 * rng.standard_normal((stop - start, dim), dtype=np.float32)
        else:
            out[start:stop] = rng.standard_normal((stop - start, 64), dtype=np.float32) @ mapping
            out[start:stop] += 0.05 * rng.standard_normal((stop - start, dim), dtype=np.float32)
    queries = out[rng.permutation(n)[:1000]] + 0.1 * rng.standard_normal((1000, dim), dtype=np.float32) * (
        1.0 if kind == "clusters" else 0.1)
    return out, queries


def measure(index, queries: np.ndarray, exact: np.ndarray) -> dict:
    import faiss

    with tempfile.TemporaryDirectory() as tmp:
        faiss.write_index(index, os.path.join(tmp, "index.faiss"))
        size = os.path.getsize(os.path.join(tmp, "index.faiss"))
    start = time.perf_counter()
    _, found = index.search(queries, 10)
    batch_ms = 1000 * (time.perf_counter() - start) / len(queries)
    start = time.perf_counter()
    for i in range(100):
        index.search(queries[i:i + 1], 10)
    single_ms = 1000 * (time.perf_counter() - start) / 100
    recall = float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(found, exact)]))
    return {"bytes_per_vector": round(size / index.ntotal, 1), "batch_ms_per_query": round(batch_ms, 3),
            "single_query_ms": round(single_ms, 2), "recall_at_10": round(recall, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--data", nargs="+", default=["clusters", "manifold"])
    args = parser.parse_args()
    import faiss

    from cnnkit.latent.index import build_faiss_index, tune_recall

    for kind in args.data:
        data, queries = vectors(kind, args.n, args.dim)
        start = time.perf_counter()
        _, exact = faiss.knn(queries, data, 10)
        exact_ms = 1000 * (time.perf_counter() - start) / len(queries)
        print(json.dumps({"data": kind, "index": "exact (faiss.knn, brute force)",
                          "batch_ms_per_query": round(exact_ms, 2)}), flush=True)
        for index_kind in ("ivf", "ivfpq"):
            start = time.perf_counter()
            index = build_faiss_index(data, "l2", index_kind)
            build = time.perf_counter() - start
            start = time.perf_counter()
            tuned = tune_recall(index, data, "l2")
            tune = time.perf_counter() - start
            print(json.dumps({"data": kind, "index": index_kind, "n": args.n, "dim": args.dim,
                              "build_s": round(build, 1), "tune_s": round(tune, 1), "nprobe": tuned["nprobe"],
                              "k_factor": tuned["k_factor"], "tuning_recall": round(tuned["recall_at_10"], 4),
                              **measure(index, queries, exact)}), flush=True)
            del index
        del data


if __name__ == "__main__":
    main()
