"""Latent vectors of a run for a folder of images: what ``cnnkit features`` writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkit._io import atomic_write
from cnnkit.data.files import expand_image_paths, scan_folder
from cnnkit.inference import Predictor
from cnnkit.latent.embedding import embedding_predictor


def folder_features(predictor: Predictor, data: str | Path, skip_bad: bool = False) -> dict[str, np.ndarray]:
    """Vectors, paths and labels of every image under ``data``: a class-folder tree (labels are the folder names,
    all splits included, one class is enough) or a folder of images without sub-folders (labels empty). With
    ``skip_bad``, unreadable images are left out, each listed in a warning."""
    root = Path(data)
    if root.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
        scan = scan_folder(root, min_classes=1)  # an empty class folder is an error, never labels dropped silently
        samples = [s for found in scan.samples.values() for s in found]
        paths, labels = [scan.root / rel for rel, _ in samples], [label for _, label in samples]
    else:
        paths = expand_image_paths([data])
        labels = [""] * len(paths)
    embedder = embedding_predictor(predictor, len(paths))  # ONNX Runtime on the CPU, decoding overlapped with it
    vectors, good = embedder.embed_files(paths, skip_bad=skip_bad, progress=None)
    paths, labels = [p for p, ok in zip(paths, good) if ok], [x for x, ok in zip(labels, good) if ok]
    return {"features": vectors.astype(np.float32), "paths": np.array([str(p) for p in paths]),
            "labels": np.array(labels), "classes": np.array(predictor.classes)}


def save_features(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """A ``.npz`` of plain arrays (strings as unicode, never objects): ``np.load(path)`` needs no pickle."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write(path, write)
