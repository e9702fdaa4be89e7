"""The unlabelled pool, read once: each new image's probabilities (and latent vector when a strategy needs it),
the run's own labelled images and copies within the pool left out, unreadable files named."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.data.files import expand_image_paths
from cnnkit.data.prepare import decode_images, report_unreadable
from cnnkit.errors import DataError, RunError
from cnnkit.inference import Predictor
from cnnkit.inference.stream import decoded_batches
from cnnkit.latent.embedding import embedding_predictor
from cnnkit.latent.index import run_index
from cnnkit.progress import Progress
from cnnkit.run import RunFolder
from cnnkit.run.seen import pixel_digest, split_digests, split_paths

log = logging.getLogger("cnnkit")
LABELLED_SPLITS = ("train", "val", "test")  # every image the run has a label for


@dataclass
class Pool:
    """The pool's images that could be suggested, in file order, with what the run makes of them."""

    root: Path
    paths: list[Path]
    probabilities: np.ndarray  # (N, classes)
    vectors: np.ndarray | None  # (N, D) latent vectors; None when the strategy needs none
    files: int = 0  # image files found
    unreadable: tuple[str, ...] = ()  # why each skipped file could not be read
    labelled: int = 0  # the run's own train, val or test images (by path or by pixels)
    copies: int = 0  # the same pixels as an earlier image of the pool


def pool_files(pool: str | Path, leave_out: Path | None = None) -> list[Path]:
    """Every image file under the folder ``pool`` (recursively, class folders or none), but those under
    ``leave_out`` (the suggestions' own folder, when it lies inside the pool: its thumbnails are no pool images)."""
    root = Path(pool)
    if not root.is_dir():
        raise DataError(f"Pool {root} is not a folder; give the folder of unlabelled images "
                        "(sub-folders are searched too).")
    files = expand_image_paths([root])
    if leave_out is None:
        return files
    outside = [p for p in files if not p.resolve().is_relative_to(leave_out.resolve())]
    if not outside:
        raise DataError(f"Pool {root} holds no images outside {leave_out}.")
    return outside


def read_pool(run: RunFolder, predictor: Predictor, pool: str | Path, embed: bool, skip_bad: bool,
              leave_out: Path | None = None, batch_size: int = 32) -> Pool:
    """The pool decoded as the run decodes, a batch at a time (memory holds the vectors, not the images)."""
    files = pool_files(pool, leave_out)
    known = set().union(*split_paths(run, LABELLED_SPLITS).values())
    labelled_pixels = set().union(*split_digests(run, predictor.preprocessing, LABELLED_SPLITS).values())
    outputs = run_outputs(run, predictor, embed, len(files))
    found = Pool(Path(pool), [], np.zeros((0, len(predictor.classes))), None, files=len(files))
    pool_pixels: set[str] = set()
    probabilities, vectors, errors = [], [], []
    with Progress(len(files), "suggest", enabled=None if len(files) > batch_size else False) as bar:
        for batch in decoded_batches(files, predictor.preprocessing, batch_size):
            errors += [e for e in batch.errors if e]
            if not skip_bad:
                report_unreadable(errors, skip_bad=False)
            keep = np.zeros(len(batch.images), bool)
            for k, (path, image) in enumerate(zip(batch.readable_paths, batch.images)):
                digest = pixel_digest(image)
                if str(path.resolve()) in known or digest in labelled_pixels:
                    found.labelled += 1
                elif digest in pool_pixels:
                    found.copies += 1
                else:
                    pool_pixels.add(digest)
                    keep[k] = True
                    found.paths.append(path)
            if keep.any():
                probability, vector = outputs(batch.images[keep])
                probabilities.append(probability)
                vectors.append(vector)
            bar.update(len(batch.paths))
    report_unreadable(errors, skip_bad)
    found.unreadable = tuple(errors)
    if probabilities:
        found.probabilities = np.concatenate(probabilities)
        found.vectors = np.concatenate(vectors) if embed else None
    return found


def run_outputs(run: RunFolder, predictor: Predictor, embed: bool, count: int):
    """A function of decoded images giving the run's probabilities and (with ``embed``) latent vectors. A transfer
    run's backbone is the pretrained one, untouched by training: its pooled features come from the feature cache,
    which every run learnt again from it shares, and only the head is computed (the labelling loop's suggestions
    in seconds). Other runs: the network (the vectors through ONNX Runtime where it can)."""
    if transfer_head(run, predictor):
        return lambda images: head_outputs(predictor, images, embed)
    network = embedding_predictor(predictor, count) if embed else predictor
    return lambda images: (network.predict_arrays(images), network.embed_arrays(images) if embed else None)


def transfer_head(run: RunFolder, predictor: Predictor) -> bool:
    """Whether the run is a frozen pretrained backbone with a trained head (its features can be cached)."""
    model = getattr(predictor, "model", None)
    return (model is not None and getattr(model, "has_backbone", False) and not predictor.reconstructs
            and run.read_record().strategy == "transfer")


def head_outputs(predictor: Predictor, images: np.ndarray, embed: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The run's probabilities (and latent vectors) of decoded ``images``: its head on the cached pooled features."""
    import torch

    from cnnkit.feature_cache import cached_features

    model = predictor.model
    features = cached_features(model, images, predictor.preprocessing, progress=False)[0][:, 0]
    with torch.inference_mode():
        vectors = model.head(features, pre_logits=True).flatten(1)
        logits = model.head(features)
        probabilities = torch.sigmoid(logits) if predictor.multi_label else torch.softmax(logits, 1)
    return probabilities.numpy(), vectors.numpy() if embed else None


def labelled_distances(run: RunFolder, predictor: Predictor, vectors: np.ndarray) -> np.ndarray | None:
    """Each vector's L2 distance to the nearest training image in the latent space (a transfer run's training
    images through the feature cache, others through the run's saved index, built when missing or stale); None,
    with a warning, when the run's training images are gone."""
    try:
        if transfer_head(run, predictor):
            return _nearest(vectors, _training_vectors(run, predictor))
        index = run_index(run.path, predictor, "l2", "flat")
    except RunError as e:
        log.warning("%s Distances are measured within the pool alone: a suggested image may be like a labelled "
                    "one.", e)
        return None
    if index.index.ntotal == 0 or len(vectors) == 0:
        return None
    distances, _ = index.search(vectors, 1)
    return distances[:, 0]


def _training_vectors(run: RunFolder, predictor: Predictor) -> np.ndarray:
    manifest = run.read_split()
    root = run.existing_data_root(manifest, "the latent distances are measured from the training images")
    paths = [root / p for p, _ in manifest.splits.get("train", [])]
    images, _ = decode_images(paths, predictor.preprocessing, skip_bad=True)
    return head_outputs(predictor, images, embed=True)[1] if len(images) else np.zeros((0, 0), np.float32)


def _nearest(vectors: np.ndarray, labelled: np.ndarray) -> np.ndarray | None:
    """Each of ``vectors``' L2 distance to the nearest of ``labelled`` (None when either is empty)."""
    if len(labelled) == 0 or len(vectors) == 0:
        return None
    a, b = np.asarray(vectors, np.float64), np.asarray(labelled, np.float64)
    squared = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None]
    return np.sqrt(np.maximum(squared, 0.0)).min(axis=1)
