"""Batches for Lightning: decoded images (uint8, N x C x H x W) or cached backbone features, with their labels."""

from __future__ import annotations

from torch.utils.data import BatchSampler

from cnnkit.config import TrainConfig
from cnnkit.data.prepare import ImageArrays, LazyImages
from cnnkit.data.preprocess import Preprocessing
from cnnkit.feature_cache import cached_features
from cnnkit.run.record import FeatureCacheRecord
from cnnkit.training.distributed import is_main, shard, world_size


def image_loader(arrays: ImageArrays, batch_size: int, shuffle: bool, seed: int, sampler=None,
                 workers: int | None = None, shard: tuple[int, int] | None = None, pin_memory: bool = False):
    """Batches of (uint8 images N x C x H x W, labels): from memory, or from the disk cache (``LazyImages``) read a
    batch at a time in ``workers`` DataLoader processes. Both draw the same batches for the same seed."""
    import torch

    if isinstance(arrays.images, LazyImages):
        return _disk_loader(arrays, batch_size, shuffle, seed, sampler, workers, shard, pin_memory)
    images = torch.from_numpy(arrays.images).permute(0, 3, 1, 2).contiguous()
    return tensor_loader(images, arrays.labels, batch_size, shuffle, seed, sampler, shard, pin_memory)


class EpochBatches(BatchSampler):
    """Batches of indices whose order ``set_epoch`` renews (Lightning calls it on a loader's sampler each epoch)."""

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)


class DiskBatches:
    """A map-style dataset whose items are whole batches: ``dataset[[i, j, ...]]`` reads those images from the disk
    cache in one go (memory: one batch per worker)."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, indices):
        import torch

        batch = torch.from_numpy(self.images[list(indices)]).permute(0, 3, 1, 2).contiguous()
        return batch, torch.as_tensor(self.labels[list(indices)])


def default_workers() -> int:
    import os

    return min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _disk_loader(arrays: ImageArrays, batch_size: int, shuffle: bool, seed: int, sampler, workers: int | None,
                 shard: tuple[int, int] | None = None, pin_memory: bool = False):
    """The loader of ``tensor_loader`` over the disk cache: the same sampler and generator draws (one seed per epoch
    for the workers, then the permutation), so the batches are those of the in-memory loader."""
    import torch
    from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

    workers = default_workers() if workers is None else workers
    generator = None if sampler is not None or shard else torch.Generator().manual_seed(seed)
    if shard is not None:
        sampler = DistributedSampler(range(len(arrays)), num_replicas=shard[1], rank=shard[0], shuffle=shuffle,
                                     seed=seed)
    order = sampler or (RandomSampler(range(len(arrays)), generator=generator) if shuffle
                        else SequentialSampler(range(len(arrays))))
    return DataLoader(DiskBatches(arrays.images, arrays.labels), sampler=EpochBatches(order, batch_size, False),
                      batch_size=None, generator=generator, num_workers=workers,
                      pin_memory=pin_memory)  # not persistent: each epoch
    # draws its worker seed from the generator, as the in-memory loader does, so the shuffles stay the same


class TensorBatches:
    """A map-style dataset whose items are whole batches: ``dataset[[i, j, ...]]`` gathers those rows of the
    tensors in one indexing operation, as a hand-written loop does (no per-image items to collate)."""

    def __init__(self, inputs, labels):
        import torch

        self.inputs, self.labels = inputs, torch.as_tensor(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, indices):
        import torch

        index = torch.as_tensor(list(indices), dtype=torch.long)
        return self.inputs[index], self.labels[index]


def tensor_loader(inputs, labels, batch_size: int, shuffle: bool, seed: int, sampler=None,
                  shard: tuple[int, int] | None = None, pin_memory: bool = False):
    """Batches of (inputs, labels): images or cached features, shuffled with ``seed`` or drawn by ``sampler``,
    gathered a batch at a time (the batches a ``DataLoader`` of single items with ``batch_size`` draws, from the same
    generator draws). ``pin_memory``: page-locked batches, for copies to a GPU that overlap its work.

    The shuffling generator is the loader's ``generator``; the epoch checkpoint saves its state, so a resumed run
    draws the batches an uninterrupted one would. ``shard`` (rank, processes): this process's share, reshuffled
    every epoch with ``seed`` (PyTorch's ``DistributedSampler``)."""
    import torch
    from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

    dataset = TensorBatches(inputs, labels)
    generator = None
    if shard is not None:
        sampler = DistributedSampler(range(len(dataset)), num_replicas=shard[1], rank=shard[0], shuffle=shuffle,
                                     seed=seed)
    elif sampler is None:
        generator = torch.Generator().manual_seed(seed)
        sampler = (RandomSampler(range(len(dataset)), generator=generator) if shuffle
                   else SequentialSampler(range(len(dataset))))
    return DataLoader(dataset, sampler=EpochBatches(sampler, batch_size, False), batch_size=None,
                      generator=generator, pin_memory=pin_memory)


def to_gpu(config: TrainConfig) -> bool:
    """Whether training's batches go to a CUDA GPU (then they are pinned: the copies overlap the GPU's work)."""
    import torch

    return config.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def generators(loaders, sampler=None) -> list:
    """Every random generator the loaders draw from (shuffling, sampling, worker seeds)."""
    found = [loader.generator for loader in loaders if getattr(loader, "generator", None) is not None]
    return found + ([sampler.generator] if getattr(sampler, "generator", None) is not None else [])


def image_loaders(splits: dict[str, ImageArrays], config: TrainConfig, sampler):
    part, batch = shard(config), process_batch(config)
    pin = to_gpu(config)
    return (image_loader(splits["train"], batch, True, config.seed, sampler, config.workers, part, pin),
            image_loader(splits["val"], batch, False, config.seed, workers=config.workers, shard=part,
                         pin_memory=pin))


def process_batch(config: TrainConfig) -> int:
    """Each process's batch: ``batch_size`` is the whole step's, shared by the processes of a distributed training,
    so that N processes take the steps one process would (and the learning rate keeps its meaning)."""
    return -(-config.batch_size // world_size(config))


def cache_refusal(config: TrainConfig) -> str | None:
    """Why cached features cannot stand in for images in this configuration (None: they can)."""
    if not config.feature_cache:
        return "turned off (feature_cache=False)"
    if config.cutmix:
        return "CutMix mixes images, not features"
    if config.augment and not config.cache_views:
        return "augment without cache_views: every epoch sees new views"
    return None


def split_features(model, splits: dict[str, ImageArrays], config: TrainConfig, preprocessing: Preprocessing,
                   progress: bool):
    """Cached pooled backbone features of the train (N, views, F) and val (N, 1, F) splits, and the cache record;
    (None, None, record with the reason) when the cache cannot stand in for the images."""
    reason = cache_refusal(config)
    if reason:
        return None, None, FeatureCacheRecord(used=False, reason=reason)
    views, write = config.cache_views or 1, is_main(config.devices)
    train, stats = cached_features(model, splits["train"].images, preprocessing, views, config.augment, write=write,
                                   progress=progress)
    val, val_stats = cached_features(model, splits["val"].images, preprocessing, 1, None, progress=progress,
                                     write=write)
    return train, val, FeatureCacheRecord(used=True, views=views, directory=stats.directory,
                                          reused=stats.reused + val_stats.reused,
                                          computed=stats.computed + val_stats.computed)


def feature_loaders(train, val, splits: dict[str, ImageArrays], config: TrainConfig, sampler):
    """Batches of cached features for the epoch-by-epoch head."""
    part, batch = shard(config), process_batch(config)
    pin = to_gpu(config)
    return (tensor_loader(train, splits["train"].labels, batch, True, config.seed, sampler, part, pin),
            tensor_loader(val, splits["val"].labels, batch, False, config.seed, shard=part, pin_memory=pin))


def mirrored_features(model, splits: dict[str, ImageArrays], preprocessing: Preprocessing, progress: bool,
                      write: bool = True):
    """Cached pooled features of the mirror images (flipped left to right) of train then val, (N, F) as numpy."""
    import numpy as np

    out = [cached_features(model, Mirrored(splits[name].images), preprocessing, 1, None, progress=progress,
                           write=write)[0][:, 0].numpy() for name in ("train", "val")]
    return np.concatenate(out)


class Mirrored:
    """Images flipped left to right as they are read: an array's or ``LazyImages``' indexing and iteration."""

    def __init__(self, images):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        import numpy as np

        return np.ascontiguousarray(np.flip(np.asarray(self.images[index]), axis=-2))

    def __iter__(self):
        for start in range(0, len(self), 64):
            yield from self[start:start + 64]
