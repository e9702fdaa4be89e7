"""Latent vectors of a run for a folder of images: what ``cnnkit features`` writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkit._io import atomic_write
from cnnkit.data.files import expand_image_paths, scan_folder
from cnnkit.data.prepare import decode_images
from cnnkit.errors import DataError
from cnnkit.inference import Predictor


def folder_features(predictor: Predictor, data: str | Path) -> dict[str, np.ndarray]:
    """Vectors, paths and labels of every image under ``data``: a class-folder tree (labels are the folder names,
    all splits included) or a plain folder of images (labels empty)."""
    try:
        scan = scan_folder(data)
        samples = [s for found in scan.samples.values() for s in found]
        paths, labels = [scan.root / rel for rel, _ in samples], [label for _, label in samples]
    except DataError:
        paths = expand_image_paths([data])
        labels = [""] * len(paths)
    vectors = predictor.embed_arrays(decode_images(paths, predictor.preprocessing))
    return {"features": vectors.astype(np.float32), "paths": np.array([str(p) for p in paths]),
            "labels": np.array(labels), "classes": np.array(predictor.classes)}


def save_features(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """A ``.npz`` of plain arrays (strings as unicode, never objects): ``np.load(path)`` needs no pickle."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write(path, write)
