"""The in-memory loader gathers whole batches (as a hand-written loop does) and draws the batches a DataLoader of
single items draws for the same seed: shuffled, from a sampler, sharded, over several epochs; batches are pinned
only for a CUDA GPU."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset, WeightedRandomSampler

from cnnkit.config import TrainConfig
from cnnkit.training import loaders
from cnnkit.training.loaders import TensorBatches, tensor_loader


def _items_loader(inputs, labels, batch_size, shuffle, seed, sampler=None, shard=None):
    """The per-item loader cnnkit used before: what the batched one must reproduce."""
    dataset = TensorDataset(inputs, torch.as_tensor(labels))
    if shard is not None:
        return DataLoader(dataset, batch_size=batch_size, sampler=DistributedSampler(
            dataset, num_replicas=shard[1], rank=shard[0], shuffle=shuffle, seed=seed))
    if sampler is not None:
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(seed))


def _epochs(loader, epochs=3):
    out = []
    for epoch in range(epochs):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        out.append([(x.clone(), y.clone()) for x, y in loader])
    return out


def _same(a, b):
    assert len(a) == len(b)
    for epoch_a, epoch_b in zip(a, b):
        assert len(epoch_a) == len(epoch_b)
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


@pytest.mark.parametrize("shuffle", [True, False])
def test_batches_equal_the_per_item_loader(shuffle):
    inputs = torch.arange(37 * 6, dtype=torch.uint8).reshape(37, 6)
    labels = np.arange(37) % 3
    _same(_epochs(tensor_loader(inputs, labels, 8, shuffle, seed=5)),
          _epochs(_items_loader(inputs, labels, 8, shuffle, seed=5)))


def test_batches_drawn_by_a_sampler_or_a_shard_equal_the_per_item_loader():
    inputs = torch.randn(29, 4)
    labels = np.arange(29) % 2
    weights = torch.linspace(0.1, 1.0, 29)
    _same(_epochs(tensor_loader(inputs, labels, 5, True, 0,
                                sampler=WeightedRandomSampler(weights, 29, generator=torch.Generator().manual_seed(1)))),
          _epochs(_items_loader(inputs, labels, 5, True, 0,
                                sampler=WeightedRandomSampler(weights, 29, generator=torch.Generator().manual_seed(1)))))
    for rank in (0, 1):
        _same(_epochs(tensor_loader(inputs, labels, 4, True, 3, shard=(rank, 2))),
              _epochs(_items_loader(inputs, labels, 4, True, 3, shard=(rank, 2))))


def test_a_batch_is_one_gather_of_multi_label_rows_too():
    targets = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 1]]
    dataset = TensorBatches(torch.arange(5), targets)
    x, y = dataset[[4, 0]]
    assert x.tolist() == [4, 0] and torch.equal(y, torch.from_numpy(targets[[4, 0]]))


def test_batches_are_pinned_only_for_a_cuda_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert loaders.to_gpu(TrainConfig(accelerator="auto")) and loaders.to_gpu(TrainConfig(accelerator="gpu"))
    assert not loaders.to_gpu(TrainConfig(accelerator="cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not loaders.to_gpu(TrainConfig(accelerator="auto"))
    assert tensor_loader(torch.zeros(4, 2), np.zeros(4), 2, True, 0, pin_memory=True).pin_memory
