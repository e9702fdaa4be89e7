"""The feature cache: pooled features of a frozen backbone, computed once per image and kept on disk.

Entries are keyed by the backbone (its weights and the preprocessing) and by the image content (the decoded pixels),
so a changed image or backbone never reuses a stale entry. Files are plain ``.npy`` arrays (loaded without pickle),
each written whole or not at all. On the CPU the backbone runs in ONNX Runtime: its graph, exported once per backbone
and preprocessing, is kept in ``graphs/`` beside the entries (``onnx_graph``).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnkit.augment.layer import Augmentation, seeded
from cnnkit.data.preprocess import Preprocessing, normalize
from cnnkit.errors import ConfigError, check_choice
from cnnkit.onnx_graph import cached_graph, onnxruntime_installed, usable_graph, weights_digest


def default_cache_dir() -> Path:
    """``$CNNKIT_CACHE_DIR/features``, else ``~/.cache/cnnkit/features``."""
    root = os.environ.get("CNNKIT_CACHE_DIR") or Path.home() / ".cache" / "cnnkit"
    return Path(root) / "features"


def backbone_key(backbone: torch.nn.Module, preprocessing: Preprocessing, augment: str | None, views: int) -> str:
    """A digest of every backbone tensor, the preprocessing and the cached views."""
    return weights_digest(backbone, preprocessing.to_dict(), augment, views)


@dataclass(frozen=True)
class CacheStats:
    directory: str
    views: int
    reused: int
    computed: int
    backend: str = "torch"  # what computed the images themselves (view 0): "onnxruntime" or "torch"


BACKENDS = ("auto", "onnxruntime", "torch")
ORT_MIN_IMAGES = 64  # fewer images than this to compute, and no graph yet: exporting one costs more than it saves


def graph_folder(cache_dir: Path | None = None) -> Path:
    """Where backbones' ONNX graphs are kept: ``graphs/`` in the feature cache."""
    return (cache_dir or default_cache_dir()) / "graphs"


@torch.no_grad()
def cached_features(model, images: np.ndarray, preprocessing: Preprocessing, views: int = 1,
                    augment: str | None = None, cache_dir: Path | None = None, batch_size: int = 32,
                    progress: bool = True, write: bool = True,
                    backend: str = "auto") -> tuple[torch.Tensor, CacheStats]:
    """Pooled features (N, views, F) of ``model.pool(model.forward_features(x))`` for (N, H, W, C) uint8 ``images``
    (an array, or images decoded when indexed: each batch is read while the one before is computed).

    View 0 is the image itself; views 1.. are random draws of ``augment`` (seeded per batch, so a rerun on the same
    images computes the same views). The model's training mode is left as it was. ``write`` False: entries are read,
    none written (the processes of a distributed training other than the main one).

    A network of several backbones (``concat_backbones``) has each backbone's entries under that backbone's key,
    concatenated in its order: the images a single-backbone run cached are not computed again; ``CacheStats`` then
    counts backbone passes (reused and computed summed over the backbones).

    ``backend`` "auto": view 0 through ONNX Runtime on the CPU when it is installed (the backbone exported once, see
    ``onnx_graph``; not for fewer than ``ORT_MIN_IMAGES`` images until a graph exists), else torch; "onnxruntime":
    whenever it can; "torch": never. Augmented views are drawn and computed in torch.
    """
    check_choice("backend", backend, BACKENDS, "cached_features")
    members = model.member_networks() if hasattr(model, "member_networks") else [model]
    if len(members) > 1:  # concatenated backbones: each one's entries under its own key, then side by side
        parts = [cached_features(member, images, preprocessing, views, augment, cache_dir, batch_size, progress,
                                 write, backend) for member in members]
        first = parts[0][1]
        return torch.cat([features for features, _ in parts], -1), CacheStats(
            first.directory, views, sum(s.reused for _, s in parts), sum(s.computed for _, s in parts), first.backend)
    was_training = model.training
    model.eval()
    try:
        return _features(model, images, preprocessing, views, augment, cache_dir, batch_size, progress, write,
                         backend)
    finally:
        model.train(was_training)


@torch.no_grad()
def _features(model, images, preprocessing, views, augment, cache_dir, batch_size, progress, write, backend):
    from cnnkit.progress import Progress

    device = next(model.parameters()).device
    flip = "flip-averaged" if getattr(model, "flip_average", False) else None  # never mixed with plain features
    setting = ",".join(filter(None, (flip, augment))) or None
    entries = _Entries(model, preprocessing, setting, views, cache_dir, images)
    missing = entries.missing()
    chunks = [missing[start:start + batch_size] for start in range(0, len(missing), batch_size)]
    batches = _ReadAhead(images, chunks)
    graph = None
    if chunks:
        graph = _backbone_graph(model, preprocessing, flip, cache_dir, len(missing), device, backend, write, batches)
    augmentation = Augmentation(augment, preprocessing.image_size).to(device) if views > 1 else None
    torch_needed = graph is None or views > 1
    bar = Progress(len(missing) * views, "Backbone features (cached for later runs)", enabled=progress)
    for chunk, decoded in batches:
        batch = torch.from_numpy(decoded).to(device).permute(0, 3, 1, 2).float() / 255.0 if torch_needed else None
        outs = [torch.from_numpy(graph(decoded)) if graph else _pooled(model, batch, preprocessing).cpu()]
        bar.update(len(chunk))
        for view in range(1, views):
            with seeded(int(entries.keys[chunk[0]][:8], 16) + view, batch.device):
                outs.append(_pooled(model, augmentation.apply(batch), preprocessing).cpu())
            bar.update(len(chunk))
        entries.store(chunk, torch.stack(outs, 1).numpy().astype(np.float32), write)
    bar.close()
    features = torch.from_numpy(entries.features()) if len(images) else torch.zeros(0, views, model.num_features)
    return features, CacheStats(str(entries.folder), views, len(images) - len(missing), len(missing),
                                "onnxruntime" if graph else "torch")


def all_stages(model) -> tuple[int, ...]:
    """The widths of the pooled features the backbone gives in one pass: its last stage's, then (where the network
    can give them) the two stages' before it, whatever ``feature_stages`` the network itself uses."""
    return tuple(getattr(model, "stage_widths", None) or (model.num_features,))


class _Entries:
    """The cache's entries for ``images``: the last stage's pooled features in ``KEY/`` (the key of the features
    alone, as before there were stages), those of the stages before it in ``KEY/earlier/``. Every
    computation gives both (one backbone pass), so features from several stages cost only the head once the plain
    features have been computed, and the plain features nothing more than they did."""

    def __init__(self, model, preprocessing, setting, views: int, cache_dir, images):
        self.widths, self.wanted = all_stages(model), model.num_features
        key = backbone_key(model.backbone, preprocessing, setting, views)
        self.folder = (cache_dir or default_cache_dir()) / key
        self.earlier = self.folder / "earlier" if len(self.widths) > 1 else None
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keys = [hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()[:32] for image in images]
        self.last = _read_entries(self.folder, self.keys, views, self.widths[0])
        needs_earlier = self.earlier is not None and self.wanted > self.widths[0]
        self.before = _read_entries(self.earlier, self.keys, views, sum(self.widths[1:])) if needs_earlier else {}
        self.needs_earlier = needs_earlier

    def missing(self) -> list[int]:
        return [i for i in range(len(self.keys)) if i not in self.last or (self.needs_earlier and i not in self.before)]

    def store(self, chunk: list[int], stacked: np.ndarray, write: bool) -> None:
        """Keep (and with ``write``, save) the computed (len(chunk), views, every stage's width) features."""
        if write and self.earlier is not None:
            self.earlier.mkdir(parents=True, exist_ok=True)
        parts = {i: (features[:, :self.widths[0]], features[:, self.widths[0]:]) for i, features in zip(chunk, stacked)}
        for i, (last, _) in parts.items():  # the plain entries first: they are what most runs read
            if write and i not in self.last:
                _save(self.folder / f"{self.keys[i]}.npy", np.ascontiguousarray(last))
            self.last.setdefault(i, last)
        for i, (_, before) in parts.items():
            if write and self.earlier is not None and i not in self.before:
                _save(self.earlier / f"{self.keys[i]}.npy", np.ascontiguousarray(before))
            self.before.setdefault(i, before)

    def features(self) -> np.ndarray:
        """(N, views, num_features): the last stage's, then the earlier stages' the network uses."""
        rows = range(len(self.keys))
        if not self.needs_earlier:
            return np.stack([self.last[i] for i in rows])
        return np.stack([np.concatenate([self.last[i], self.before[i]], 1)[:, :self.wanted] for i in rows])


class PooledFeatures(torch.nn.Module):
    """``pool(forward_features(x))`` of a network (with its flip averaging) for every stage it can give (see
    ``all_stages``): what the cache stores, as one module."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.stages = len(all_stages(model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stages == 1:
            return self.model.pool(self.model.forward_features(x))
        return self.model.pool(self.model.stage_features(x, self.stages))


def _backbone_graph(model, preprocessing, flip, cache_dir, count, device, backend, write, batches):
    """The backbone's graph for ONNX Runtime (``onnx_graph.cached_graph``), or None where torch computes: see
    ``cached_features``. ``batches`` is peeked at for the images an export is checked on."""
    if backend == "torch":
        return None
    if device.type != "cpu" or not onnxruntime_installed():
        if backend == "onnxruntime":
            raise ConfigError("`backend` onnxruntime needs onnxruntime installed (pip install onnxruntime) and the "
                              f"model on the CPU (it is on {device.type}); use backend auto or torch.")
        return None
    stages = len(all_stages(model))  # a graph of every stage is another graph than one of the last stage's
    key = backbone_key(model.backbone, preprocessing, ",".join(filter(None, (flip, stages > 1 and f"stages={stages}")))
                       or None, 1)
    folder = graph_folder(cache_dir)
    if backend == "auto" and count < ORT_MIN_IMAGES and not usable_graph(folder, key):
        return None
    return cached_graph(PooledFeatures(model), preprocessing, key, folder, batches.peek(), export=write)


class _ReadAhead:
    """``(chunk, images[chunk])`` for each chunk in order, the next batch read (decoded, for lazy images) by a thread
    while the current one is computed. ``peek()``: the first batch, without consuming it."""

    def __init__(self, images, chunks: list[list[int]]):
        self.images, self.chunks = images, chunks
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="cnnkit-features")
        self.pending = self.pool.submit(self._read, 0) if chunks else None

    def _read(self, index: int) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(self.images[self.chunks[index]], dtype=np.uint8))

    def peek(self) -> np.ndarray:
        return self.pending.result()

    def __iter__(self):
        try:
            for index, chunk in enumerate(self.chunks):
                decoded = self.pending.result()
                self.pending = self.pool.submit(self._read, index + 1) if index + 1 < len(self.chunks) else None
                yield chunk, decoded
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _read_entries(folder: Path, keys: list[str], views: int, width: int) -> dict[int, np.ndarray]:
    """The cached features of each key that has an entry; a broken entry (unreadable, or not (views, width)
    float32) is deleted and recomputed."""
    found: dict[int, np.ndarray] = {}
    for i, key in enumerate(keys):
        path = folder / f"{key}.npy"
        if path.exists():
            try:
                entry = np.load(path, allow_pickle=False)
                if entry.shape != (views, width) or entry.dtype != np.float32:
                    raise ValueError(f"shape {entry.shape}, {entry.dtype}")
                found[i] = entry
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
    return found


def _pooled(model, batch: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    return PooledFeatures(model)(normalize(batch, preprocessing))


def _save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
    os.replace(tmp, path)
