"""Latent retrieval at a million vectors: cnnkit's `ivfpq` index (what `cnnkit similar --index ivfpq` builds) on
1,000,000 x 1280 float32 vectors (EfficientNet-Lite0's feature size), against exact search.

    python benchmarks/retrieval_1m.py [--n 1000000] [--dim 1280] [--spread 0.5]

Vectors lie around 1,000 centres (noise std ``spread`` against the centres' 1: clustered like a trained network's
features); queries are perturbed members. Reported: build time, the index's size per vector, ms per query one at a
time and in a batch of 1,000, and recall@10 against exact search (faiss.knn, brute force) on 1,000 queries.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np


def vectors(n: int, dim: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dim), dtype=np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):  # in float32 chunks: 5 GB, never 10
        stop = min(n, start + 50_000)
        out[start:stop] = centres[rng.integers(0, 1000, stop - start)]
        out[start:stop] += spread * rng.standard_normal((stop - start, dim), dtype=np.float32)
    queries = out[rng.permutation(n)[:1000]] + 0.1 * rng.standard_normal((1000, dim), dtype=np.float32)
    return out, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--spread", type=float, default=0.5)
    args = parser.parse_args()
    import faiss

    from cnnkit.latent.index import build_faiss_index

    start = time.perf_counter()
    data, queries = vectors(args.n, args.dim, args.spread)
    print(f"generated {args.n} x {args.dim} in {time.perf_counter() - start:.0f} s", flush=True)
    start = time.perf_counter()
    index = build_faiss_index(data, "l2", "ivfpq")
    build = time.perf_counter() - start
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
    start = time.perf_counter()
    _, exact = faiss.knn(queries, data, 10)
    exact_ms = 1000 * (time.perf_counter() - start) / len(queries)
    recall = float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(found, exact)]))
    print(json.dumps({"n": args.n, "dim": args.dim, "spread": args.spread, "build_s": round(build, 1),
                      "bytes_per_vector": round(size / args.n, 1), "float32_bytes_per_vector": 4 * args.dim,
                      "batch_ms_per_query": round(batch_ms, 3), "single_query_ms": round(single_ms, 2),
                      "exact_batch_ms_per_query": round(exact_ms, 2), "recall_at_10": recall,
                      "nlist": faiss.downcast_index(index.base_index).nlist,
                      "nprobe": faiss.downcast_index(index.base_index).nprobe, "k_factor": index.k_factor}))


if __name__ == "__main__":
    main()
