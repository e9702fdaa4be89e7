"""The feature cache: pooled features of a frozen backbone, computed once per image and kept on disk.

Entries are keyed by the backbone (its weights and the preprocessing) and by the image content (the decoded pixels),
so a changed image or backbone never reuses a stale entry. Files are plain ``.npy`` arrays (loaded without pickle).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnkit.augment.layer import Augmentation, seeded
from cnnkit.data.preprocess import Preprocessing, normalize


def default_cache_dir() -> Path:
    """``$CNNKIT_CACHE_DIR/features``, else ``~/.cache/cnnkit/features``."""
    root = os.environ.get("CNNKIT_CACHE_DIR") or Path.home() / ".cache" / "cnnkit"
    return Path(root) / "features"


def backbone_key(backbone: torch.nn.Module, preprocessing: Preprocessing, augment: str | None, views: int) -> str:
    """A digest of every backbone tensor, the preprocessing and the cached views."""
    digest = hashlib.sha256(repr((preprocessing.to_dict(), augment, views)).encode())
    for name, tensor in backbone.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


@dataclass(frozen=True)
class CacheStats:
    directory: str
    views: int
    reused: int
    computed: int


@torch.no_grad()
def cached_features(model, images: np.ndarray, preprocessing: Preprocessing, views: int = 1,
                    augment: str | None = None, cache_dir: Path | None = None, batch_size: int = 32,
                    progress: bool = True, write: bool = True) -> tuple[torch.Tensor, CacheStats]:
    """Pooled features (N, views, F) of ``model.pool(model.forward_features(x))`` for (N, H, W, C) uint8 ``images``.

    View 0 is the image itself; views 1.. are random draws of ``augment`` (seeded per batch, so a rerun on the same
    images computes the same views). The model's training mode is left as it was. ``write`` False: entries are read,
    none written (the processes of a distributed training other than the main one).
    """
    was_training = model.training
    model.eval()
    try:
        return _features(model, images, preprocessing, views, augment, cache_dir, batch_size, progress, write)
    finally:
        model.train(was_training)


@torch.no_grad()
def _features(model, images, preprocessing, views, augment, cache_dir, batch_size, progress, write=True):
    from cnnkit.progress import Progress

    device = next(model.parameters()).device
    flip = "flip-averaged" if getattr(model, "flip_average", False) else None  # never mixed with plain features
    folder = (cache_dir or default_cache_dir()) / backbone_key(model.backbone, preprocessing,
                                                               ",".join(filter(None, (flip, augment))) or None, views)
    folder.mkdir(parents=True, exist_ok=True)
    keys = [hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()[:32] for image in images]
    found = _read_entries(folder, keys)
    missing = [i for i in range(len(images)) if i not in found]
    augmentation = Augmentation(augment, preprocessing.image_size).to(device) if views > 1 else None
    bar = Progress(len(missing) * views, "Backbone features (cached for later runs)", enabled=progress)
    for start in range(0, len(missing), batch_size):
        chunk = missing[start:start + batch_size]
        batch = torch.from_numpy(images[chunk]).to(device).permute(0, 3, 1, 2).float() / 255.0
        outs = [_pooled(model, batch, preprocessing)]
        bar.update(len(chunk))
        for view in range(1, views):
            with seeded(int(keys[chunk[0]][:8], 16) + view, batch.device):
                outs.append(_pooled(model, augmentation.apply(batch), preprocessing))
            bar.update(len(chunk))
        stacked = torch.stack(outs, 1).cpu().numpy().astype(np.float32)
        for i, features in zip(chunk, stacked):
            found[i] = features
            if write:
                _save(folder / f"{keys[i]}.npy", features)
    bar.close()
    features = torch.from_numpy(np.stack([found[i] for i in range(len(images))])) if len(images) else torch.zeros(
        0, views, model.num_features)
    return features, CacheStats(str(folder), views, len(images) - len(missing), len(missing))


def _read_entries(folder: Path, keys: list[str]) -> dict[int, np.ndarray]:
    """The cached features of each key that has an entry; a broken entry is deleted (and recomputed)."""
    found: dict[int, np.ndarray] = {}
    for i, key in enumerate(keys):
        path = folder / f"{key}.npy"
        if path.exists():
            try:
                found[i] = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
    return found


def _pooled(model, batch: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    return model.pool(model.forward_features(normalize(batch, preprocessing)))


def _save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
    os.replace(tmp, path)
