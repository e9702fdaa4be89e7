"""The training images nearest to a query image in a run's latent space (``cnnkit similar``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.config import SearchConfig
from cnnkit.inference import Predictor
from cnnkit.latent.index import run_index
from cnnkit.options import with_options
from cnnkit.run import RunFolder


@dataclass(frozen=True)
class Neighbours:
    """A query and its nearest training images, nearest first."""

    query: Path
    paths: list[Path]
    classes: list[str]
    distances: np.ndarray
    metric: str
    recall_at_10: float | None  # of an approximate index against exact search; None for exact search
    query_image: np.ndarray
    images: np.ndarray  # the neighbours, decoded as the run decodes images

    def grid_png(self) -> bytes:
        """The query, then its neighbours with class and distance."""
        from cnnkit.plots import image_grid_png

        images = np.concatenate([self.query_image[None], self.images])
        captions = ["query"] + [f"{c}\n{self.metric} {d:.3f}" for c, d in zip(self.classes, self.distances)]
        return image_grid_png(images, captions, columns=min(len(images), 6))


@with_options(SearchConfig)
def similar(run_dir: str | Path, query: str | Path, config: SearchConfig | None = None) -> Neighbours:
    """Search the run's training split (its saved index, built when missing or stale) for ``query``'s neighbours."""
    config = config or SearchConfig()
    predictor = Predictor.load(run_dir, backend="torch")
    index = run_index(run_dir, predictor, config.metric, config.index)
    query_image = predictor.load_images([query])
    distances, ids = index.search(predictor.embed_arrays(query_image), config.k)
    paths = [index.root / index.paths[i] for i in ids[0]]
    names = dict(RunFolder(run_dir).read_split().splits.get("train", []))  # path -> class, or "a|b" (multi-label)
    return Neighbours(Path(query), paths, [names.get(index.paths[i]) or "(none)" for i in ids[0]], distances[0],
                      config.metric, index.recall_at_10, query_image[0], predictor.load_images(paths))
