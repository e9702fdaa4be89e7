"""A FAISS index of a run's training images in the latent space, saved in the run and rebuilt when the run changes."""

from __future__ import annotations

import hashlib
import logging
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit._io import atomic_write, read_json, sha256_file, write_json
from cnnkit.config.commands import INDEX_KINDS, METRICS
from cnnkit.errors import ConfigError, check_choice
from cnnkit.inference import Predictor
from cnnkit.latent.embedding import embedding_predictor
from cnnkit.run import RunFolder
from cnnkit.run.lock import locked

log = logging.getLogger("cnnkit")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def prepare_vectors(vectors: np.ndarray, metric: str) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if metric == "cosine":
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors


PQ_MIN_VECTORS = 10_000  # product quantization trains 256 centroids per sub-vector


def build_faiss_index(vectors: np.ndarray, metric: str = "l2", kind: str = "flat", nprobe: int = 8):
    """Exact (``flat``), inverted-file (``ivf``: about sqrt(n) lists, ``nprobe`` searched) or compressed
    (``ivfpq``: sqrt(n) lists, 16 searched, product-quantized codes of about 16 dimensions per byte, the best
    candidates re-ranked on 8-bit scalar-quantized vectors: about dim + dim/16 bytes per vector) index."""
    import faiss

    check_choice("metric", metric, METRICS)
    check_choice("index", kind, INDEX_KINDS)
    dim = vectors.shape[1]
    faiss_metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
    flat = faiss.IndexFlatL2(dim) if metric == "l2" else faiss.IndexFlatIP(dim)
    if kind == "flat":
        flat.add(vectors)
        return flat
    if kind == "ivfpq" and len(vectors) < PQ_MIN_VECTORS:
        raise ConfigError(f"`index` ivfpq needs at least {PQ_MIN_VECTORS:,} vectors to train its quantizers; "
                          f"this collection has {len(vectors):,}. Use flat or ivf.")
    nlist = max(1, min(int(np.sqrt(len(vectors))), len(vectors) // 39 or 1))
    sample = vectors[np.random.default_rng(0).permutation(len(vectors))[:100_000]]  # enough to train on
    if kind == "ivf":
        index = faiss.IndexIVFFlat(flat, dim, nlist, faiss_metric)
        index.train(sample)
        index.nprobe = min(nprobe, nlist)
    else:
        codes = next(m for m in range(max(1, dim // 16), dim + 1) if dim % m == 0)
        coarse = faiss.IndexIVFPQ(flat, dim, nlist, codes, 8, faiss_metric)
        coarse.nprobe = min(2 * nprobe, nlist)
        index = faiss.IndexRefine(coarse, faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit,
                                                                     faiss_metric))
        index.k_factor = 8
        index.train(sample)
    index.add(vectors)
    return index


TARGET_RECALL = 0.95


def _search_settings(index):
    """(the inverted file, the re-ranking wrapper or None) of an approximate index."""
    import faiss

    if isinstance(index, faiss.IndexRefine):
        return faiss.downcast_index(index.base_index), index
    return index, None


def tune_recall(index, vectors: np.ndarray, metric: str = "l2", target: float = TARGET_RECALL,
                sample: int = 200) -> dict:
    """Search more lists (and, for ``ivfpq``, re-rank more candidates) until recall@10 against exact search reaches
    ``target`` on ``sample`` of the indexed vectors as queries (each one's own entry left out), or every list is
    searched. Leaves the index at the first settings that reach it (else at the best seen) and returns them with
    the recall measured."""
    import faiss

    ivf, refine = _search_settings(index)
    queries = vectors[np.random.default_rng(0).permutation(len(vectors))[:sample]]
    own = np.random.default_rng(0).permutation(len(vectors))[:sample]
    k = min(10, len(vectors) - 1)
    exact = faiss.knn(queries, vectors, k + 1, metric=faiss.METRIC_L2 if metric == "l2" else
                      faiss.METRIC_INNER_PRODUCT)[1]

    def recall() -> float:
        found = index.search(queries, k + 1)[1]
        return float(np.mean([len(set(f[f != o][:k]) & set(e[e != o][:k])) / k
                              for f, e, o in zip(found, exact, own)]))

    best = None
    probes = sorted({min(ivf.nlist, ivf.nprobe * 2 ** i) for i in range(12)})
    for nprobe in probes:
        for k_factor in ((8, 32, 128) if refine is not None else (None,)):
            ivf.nprobe = nprobe
            if refine is not None:
                refine.k_factor = k_factor
            measured = {"recall_at_10": recall(), "nprobe": nprobe, "k_factor": k_factor}
            if best is None or measured["recall_at_10"] > best["recall_at_10"]:
                best = measured
            if measured["recall_at_10"] >= target:
                return measured
    ivf.nprobe = best["nprobe"]
    if refine is not None:
        refine.k_factor = best["k_factor"]
    return best


def to_distances(scores: np.ndarray, metric: str) -> np.ndarray:
    """FAISS scores to distances: L2 (not squared) or cosine distance 1 - similarity."""
    return np.sqrt(np.maximum(scores, 0.0)) if metric == "l2" else 1.0 - scores


def recall_at_k(index, exact, queries: np.ndarray, k: int = 10) -> float:
    """Share of the exact k nearest neighbours that ``index`` also returns."""
    k = min(k, exact.ntotal)
    _, approx_ids = index.search(queries, k)
    _, exact_ids = exact.search(queries, k)
    return float(np.mean([len(set(a) & set(e)) / k for a, e in zip(approx_ids, exact_ids)]))


def check_index_file(path: Path, kind: str = "flat") -> None:
    """Refuse a saved index whose header promises more vectors than the file holds (FAISS would allocate them all
    before failing): every index cnnkit writes stores its n x d vectors in the file, as float32 (flat, ivf) or as
    bytes (ivfpq's re-ranking vectors)."""
    with open(path, "rb") as f:
        header = f.read(16)
    if len(header) < 16:
        raise ValueError("too short for a FAISS index")
    dim, count = struct.unpack("<i", header[4:8])[0], struct.unpack("<q", header[8:16])[0]
    if not 0 < dim <= 1 << 16 or not 0 <= count or (1 if kind == "ivfpq" else 4) * dim * count > path.stat().st_size:
        raise ValueError(f"its header promises {count} vectors of dimension {dim}, more than its "
                         f"{path.stat().st_size} bytes hold")


@dataclass
class LatentIndex:
    """The training split of a run, searchable in its latent space."""

    index: object
    metric: str
    kind: str
    paths: list[str]
    labels: np.ndarray
    root: Path
    recall_at_10: float | None

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(distances, indices), nearest first, for each query vector."""
        k = min(k, self.index.ntotal)
        scores, ids = self.index.search(prepare_vectors(vectors, self.metric), k)
        return to_distances(scores, self.metric), ids


def run_index(run_dir: str | Path, predictor: Predictor | None = None, metric: str = "l2",
              kind: str = "flat") -> LatentIndex:
    """The run's index for ``metric`` and ``kind`` from ``RUN/index/``, built (and saved) when it is missing or was
    made for other weights or another split."""
    import faiss

    check_choice("metric", metric, METRICS)
    check_choice("index", kind, INDEX_KINDS)
    run = RunFolder(run_dir)
    predictor = predictor or Predictor.load(run.path, backend="torch")
    key = {"weights": _digest(run.weights_path), "split": _digest(run.split_path), "metric": metric, "kind": kind}
    folder = run.index_dir
    meta_path, index_path = folder / f"{metric}-{kind}.json", folder / f"{metric}-{kind}.faiss"
    manifest = run.read_split()
    if meta_path.exists() and index_path.exists():
        try:
            meta = read_json(meta_path)
            if meta.get("key") == key:
                check_index_file(index_path, kind)
                if meta.get("index_sha256") != sha256_file(index_path):
                    raise ValueError(f"it is not the file {meta_path.name} describes: replaced or changed since it "
                                     "was built, or built by an older cnnkit")
                saved = faiss.read_index(str(index_path))
                if saved.ntotal != len(meta["paths"]):
                    raise ValueError(f"it holds {saved.ntotal} vectors for {len(meta['paths'])} images")
                return LatentIndex(saved, metric, kind, meta["paths"], np.array(meta["labels"]),
                                   run.data_root(manifest), meta.get("recall_at_10"))
        except (RuntimeError, OSError, ValueError, KeyError) as e:  # a damaged index is rebuilt, not trusted
            log.warning("The saved index %s is damaged (%s); rebuilding it.", index_path, str(e).splitlines()[0])
    samples = manifest.splits.get("train", [])
    root = run.existing_data_root(manifest, "the latent index is built from the training images")
    embedder = embedding_predictor(predictor, len(samples))  # ONNX Runtime on the CPU
    embedded, _ = embedder.embed_files([root / p for p, _ in samples], progress=None)
    vectors = prepare_vectors(embedded, metric)
    paths = [p for p, _ in samples]  # a multi-label image has no one class to vote with (-1): k-NN refuses those
    labels = np.array([-1 if predictor.multi_label else predictor.classes.index(c) for _, c in samples], np.int64)
    start = time.perf_counter()
    index = build_faiss_index(vectors, metric, kind)
    recall = None
    if kind != "flat":
        tuned = tune_recall(index, vectors, metric)
        recall = tuned["recall_at_10"]
        lists = _search_settings(index)[0].nlist
        if recall < TARGET_RECALL:
            log.warning("The %s index reaches recall@10 %.2f against exact search at best (%d lists searched): "
                        "use `index` flat or ivf for exact-quality neighbours.", kind, recall, tuned["nprobe"])
        elif tuned["nprobe"] > lists // 4:
            log.warning("The %s index needs %d of its %d lists searched for recall@10 %.2f: these vectors do not "
                        "cluster, and exact search (`index` flat) is about as fast.", kind, tuned["nprobe"], lists,
                        recall)
    with locked(run.path):
        atomic_write(index_path, lambda tmp: faiss.write_index(index, str(tmp)))
        write_json(meta_path, {"key": key, "index_sha256": sha256_file(index_path), "paths": paths,
                               "labels": labels.tolist(),
                               "recall_at_10": recall, "build_seconds": time.perf_counter() - start})
    return LatentIndex(index, metric, kind, paths, labels, run.data_root(manifest), recall)


def knn_vote(neighbor_labels: np.ndarray, distances: np.ndarray, num_classes: int) -> np.ndarray:
    """Class probabilities as vote shares of the neighbours; ties go to the class whose voters are nearer."""
    votes = np.zeros((len(neighbor_labels), num_classes))
    closeness = np.zeros_like(votes)
    for row, (labels, dist) in enumerate(zip(neighbor_labels, distances)):
        np.add.at(votes[row], labels, 1.0)
        np.add.at(closeness[row], labels, -dist)
    # Break ties: a tiny amount orders classes with equal votes by their summed distance (smaller wins).
    scores = votes + 1e-6 * (closeness - closeness.min(1, keepdims=True)) / (np.abs(closeness).max() + 1.0)
    return scores / scores.sum(1, keepdims=True)
