"""A 2-D t-SNE map of latent vectors, coloured by class, with thumbnails of some images."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.config import TsneConfig
from cnnkit.options import with_options


def tsne_coordinates(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, 2) t-SNE coordinates (scikit-learn, PCA initialisation, perplexity at most 30 and below N/3)."""
    from sklearn.manifold import TSNE

    n = len(vectors)
    if n < 4:
        from cnnkit.errors import DataError

        raise DataError(f"t-SNE needs at least 4 images; received {n}.")
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        np.asarray(vectors, dtype=np.float32))


@dataclass(frozen=True)
class TsneMap:
    coordinates: np.ndarray  # (N, 2)
    labels: np.ndarray
    png: bytes


@with_options(TsneConfig)
def run_tsne(run_dir: str | Path, data: str | Path | None = None, config: TsneConfig | None = None) -> TsneMap:
    """t-SNE of the latent vectors of ``data`` (a labelled folder) or of the run's train, val and test images."""
    from cnnkit.data.prepare import load_folder
    from cnnkit.inference import Predictor
    from cnnkit.latent.embedding import embedding_predictor
    from cnnkit.run import RunFolder

    config = config or TsneConfig()
    predictor = Predictor.load(run_dir, backend="torch")
    if data:
        arrays = load_folder(data, predictor.classes, predictor.preprocessing, shared_only=True,
                             multi_label=predictor.multi_label)[0]
        images, labels = arrays.images, arrays.labels
    else:
        run = RunFolder(run_dir)
        parts = [run.load_split(s, predictor.classes, predictor.preprocessing, predictor.multi_label)
                 for s in ("train", "val", "test")]
        images, labels = np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts])
    classes = predictor.classes
    if predictor.multi_label:  # coloured by label set: each combination that occurs is one colour
        from cnnkit.data.prepare import label_names

        names = [label_names(row, classes) or "(none)" for row in labels]
        classes = sorted(set(names))
        labels = np.array([classes.index(n) for n in names], np.int64)
    vectors = embedding_predictor(predictor, len(images)).embed_arrays(images)
    logging.getLogger("cnnkit").info("t-SNE of %d latent vectors (%d dimensions)...", *vectors.shape)
    coords = tsne_coordinates(vectors, seed=config.seed)
    from cnnkit.plots import tsne_png

    png = tsne_png(coords, labels, classes, images, config.thumbnails, config.seed)
    return TsneMap(coords, labels, png)
