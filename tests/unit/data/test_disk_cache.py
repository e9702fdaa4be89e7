"""Data larger than memory: images decoded once into a memory-mapped cache on disk and read back in DataLoader
workers train exactly what images held in memory train; a changed file is decoded again."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.data.cache import DecodedCache
from cnnkit.data.prepare import LazyImages, prepare_training_data
from tests.conftest import write_image_folder


@pytest.fixture
def folder(tmp_path) -> Path:
    return write_image_folder(tmp_path / "data", ["a", "b", "c"], 12, size=20)


def test_training_from_the_disk_cache_in_workers_equals_training_in_memory(folder, tmp_path):
    import torch
    from safetensors.numpy import load_file

    from cnnkit.training.fit import train
    from cnnkit.training.loaders import image_loader

    memory = prepare_training_data(folder, data_in="memory")
    disk = prepare_training_data(folder, data_in="disk")
    assert isinstance(disk.splits["train"].images, LazyImages) and isinstance(memory.splits["train"].images,
                                                                              np.ndarray)
    assert disk.manifest == memory.manifest and disk.preprocessing == memory.preprocessing
    batches = [list(image_loader(prepared.splits["train"], 8, True, 3, workers=workers))
               for prepared, workers in ((memory, None), (disk, 2))]
    assert len(batches[0]) == len(batches[1]) == -(-len(memory.splits["train"]) // 8)
    for (x, y), (x2, y2) in zip(*batches):  # the same images in the same order, from two worker processes
        assert torch.equal(x, x2) and torch.equal(y, y2)
    runs = [train(folder, tmp_path / f"{where}-{workers}", model="tiny_cnn", epochs=3, progress=False,
                  data_in=where, workers=workers) for where, workers in (("memory", 0), ("disk", 0), ("disk", 2))]
    weights = [load_file(run.run_dir / "model.safetensors") for run in runs]
    assert all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])  # read in this process: exact
    # read in worker processes: the same batches, and the weights equal to float rounding (batches that arrive
    # through shared memory can change the last bits of CPU kernels' sums)
    assert all(np.allclose(weights[0][k], weights[2][k], atol=1e-4) for k in weights[0])


def test_a_changed_image_is_decoded_again_and_the_others_are_read_back(folder):
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
    cache = DecodedCache(folder, files, (20, 20), 3)
    first, errors = cache.read(np.arange(len(files)))
    assert not any(errors) and cache.filled() == len(files)
    changed = folder / files[0]
    Image.fromarray(np.full((20, 20, 3), 7, np.uint8)).save(changed)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    again = DecodedCache(folder, files, (20, 20), 3)
    assert again.folder == cache.folder and again.filled() == len(files) - 1  # only the changed file is stale
    images, _ = again.read(np.arange(len(files)))
    assert (images[0] == 7).all() and not np.array_equal(images[0], first[0])
    assert np.array_equal(images[1:], first[1:])


def test_a_subset_reads_the_rows_the_whole_set_filled(folder):
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
    DecodedCache(folder, files, (20, 20), 3).read(np.arange(len(files)))
    subset = DecodedCache(folder, files[5:9], (20, 20), 3)
    assert subset.filled() == 4  # a run's split, resumed: nothing to decode again


def test_an_unreadable_file_in_the_disk_cache_is_named_or_left_out(folder):
    from cnnkit.errors import DataError

    (folder / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(DataError, match="broken.png"):
        prepare_training_data(folder, data_in="disk")
    prepared = prepare_training_data(folder, data_in="disk", skip_bad=True)
    assert "a/broken.png" in prepared.skipped
    assert len(prepared.splits["train"]) + len(prepared.splits["val"]) + len(prepared.splits["test"]) == 36


def test_the_automatic_choice_goes_to_disk_only_above_a_gibibyte_of_pixels():
    from cnnkit.data.prepare import on_disk

    assert not on_disk("auto", 100_000, (32, 32), 3)  # 0.3 GB: memory
    assert on_disk("auto", 100_000, (64, 64), 3)  # 1.2 GB: disk
    assert on_disk("disk", 10, (8, 8), 1) and not on_disk("memory", 10**7, (224, 224), 3)


def test_each_process_of_a_distributed_training_reads_its_own_share(folder):
    import torch

    from cnnkit.config import TrainConfig
    from cnnkit.training.loaders import image_loader, process_batch

    disk = prepare_training_data(folder, data_in="disk")
    train = disk.splits["train"]
    seen = []
    for rank in (0, 1):
        loader = image_loader(train, 4, True, 0, workers=0, shard=(rank, 2))
        loader.sampler.set_epoch(1)  # as Lightning does each epoch
        seen.append(torch.cat([x.flatten(1) for x, _ in loader]))
    assert len(train) % 2 == 0
    rows = {tuple(r.tolist()) for r in torch.cat(seen)}
    assert len(rows) == len(train)  # together they read every image; no image twice (the count is even)
    first_epoch = image_loader(train, 4, True, 0, workers=0, shard=(0, 2))
    assert not torch.equal(torch.cat([x.flatten(1) for x, _ in first_epoch]), seen[0])  # a new order each epoch
    assert process_batch(TrainConfig(batch_size=32, devices=2, num_nodes=2)) == 8
    assert process_batch(TrainConfig(batch_size=30, devices=4)) == 8
