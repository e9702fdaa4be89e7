"""Shared fixtures: tiny real image folders written by the tests, and one small trained run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def pytest_configure(config):
    """Under pytest-xdist (``-n``), each worker gets its own share of the machine's cores before torch, ONNX Runtime
    or a thread pool sizes itself: two workers on 2 cores run side by side instead of four threads fighting for two.
    Subprocesses a test starts inherit the share."""
    import os

    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    share = cpus[int(worker.removeprefix("gw")) % count::count]
    if len(cpus) >= count and share:
        os.sched_setaffinity(0, share)


def pattern_image(label: int, rng: np.random.Generator, size: int = 16, mode: str = "RGB") -> Image.Image:
    """Class 0: bright left half; class 1: bright right half; class 2: bright top half; plus noise. Gray pixels in
    any ``mode`` (R = G = B in "RGB"), except "colour"."""
    pixels = rng.integers(0, 60, (size, size)).astype(np.uint8)
    half = size // 2
    region = [(slice(None), slice(0, half)), (slice(None), slice(half, None)), (slice(0, half), slice(None))][label]
    pixels[region] += 150
    image = Image.fromarray(pixels, mode="L")
    if mode == "colour":  # the same pattern, in colour: red, green and blue weighted differently
        return Image.fromarray((pixels[..., None] * np.array([1.0, 0.6, 0.3])).astype(np.uint8), mode="RGB")
    return image if mode == "L" else image.convert(mode)


def write_image_folder(root: Path, classes: list[str], per_class: int, size: int = 16, mode: str = "RGB",
                       seed: int = 0, ext: str = "png") -> Path:
    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pattern_image(label, rng, size, mode).save(root / name / f"{name}_{i:03d}.{ext}")
    return root


def network_run(family: str, base: Path, out: Path, size: int = 32, options: dict | None = None) -> Path:
    """A copy of the run ``base`` whose network is ``family`` at ``size`` pixels with fresh, seeded weights: for
    tests where what matters is the computation (export, streaming), not what was learned."""
    import json
    import shutil

    import torch

    from cnnkit.run import RunFolder
    from cnnkit.weights import save_weights

    shutil.copytree(base, out, ignore=shutil.ignore_patterns("export", "checkpoints", "logs", "eval*"))
    record = json.loads((out / "config.json").read_text())
    record["model"].update(name=family, options=options or {})
    record["preprocessing"]["image_size"] = [size, size]
    (out / "config.json").write_text(json.dumps(record))
    torch.manual_seed(0)
    network = RunFolder(out).read_record().build_network().eval()
    with torch.no_grad():  # batch norm statistics away from the identity, so the export must carry them right
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    save_weights(network, out / "model.safetensors")
    return out


@pytest.fixture(autouse=True)
def fresh_cnnkit_logger():
    """The CLI points the cnnkit logger at the stderr of its time; each test starts with a logger of its own."""
    import logging

    logger = logging.getLogger("cnnkit")
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    yield
    logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


@pytest.fixture
def two_classes(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "data", ["left", "right"], per_class=12)


@pytest.fixture(scope="session")
def pattern_data(tmp_path_factory) -> Path:
    """Three easy classes, 30 images each, flat layout."""
    return write_image_folder(tmp_path_factory.mktemp("patterns"), ["left", "right", "top"], per_class=30)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, pattern_data: Path) -> Path:
    """A tiny_cnn trained for a few epochs: shared by prediction, evaluation and summary tests."""
    from cnnkit.config import TrainConfig
    from cnnkit.evaluation.evaluate import evaluate_run
    from cnnkit.training.fit import train

    out = tmp_path_factory.mktemp("runs") / "tiny"
    train(pattern_data, out, TrainConfig(model="tiny_cnn", epochs=4, batch_size=16, lr=0.01), progress=False)
    evaluate_run(out)  # as `cnnkit train` does: the run holds its test scores and report
    return out


@pytest.fixture(scope="session")
def binary_data(tmp_path_factory) -> Path:
    """Two classes with an overlap (faint patterns), so the ROC is not a perfect corner."""
    root = tmp_path_factory.mktemp("binary")
    rng = np.random.default_rng(7)
    for label, name in enumerate(["left", "right"]):
        (root / name).mkdir()
        for i in range(40):
            pixels = rng.integers(0, 120, (16, 16)).astype(np.uint8)
            pixels[:, 8 * label: 8 * label + 8] += rng.integers(0, 50, dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(root / name / f"{name}_{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def binary_run(tmp_path_factory, binary_data: Path) -> Path:
    from cnnkit.config import TrainConfig
    from cnnkit.evaluation.evaluate import evaluate_run
    from cnnkit.training.fit import train

    out = tmp_path_factory.mktemp("runs") / "binary"
    train(binary_data, out, TrainConfig(model="tiny_cnn", epochs=3, batch_size=16, lr=0.01), progress=False)
    evaluate_run(out)
    return out


@pytest.fixture(scope="session")
def augmented_run(tmp_path_factory, pattern_data: Path) -> Path:
    """Trained with flips, rotation, mixup and class weights: the run test-time augmentation draws on."""
    from cnnkit.config import TrainConfig
    from cnnkit.training.fit import train

    out = tmp_path_factory.mktemp("runs") / "augmented"
    config = TrainConfig(model="tiny_cnn", epochs=3, batch_size=16, lr=0.01, augment="flip=hv,rotate=10",
                         mixup=0.2, balance="weights")
    train(pattern_data, out, config, progress=False)
    return out


@pytest.fixture(scope="session", autouse=True)
def _private_caches(tmp_path_factory):
    """Feature and decoded-image caches in the session's own folder: no test reads what an earlier session left in
    ~/.cache/cnnkit, so a run here behaves as in a fresh CI machine."""
    import os

    before = os.environ.get("CNNKIT_CACHE_DIR")
    os.environ["CNNKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("cnnkit-cache"))
    yield
    if before is None:
        os.environ.pop("CNNKIT_CACHE_DIR", None)
    else:
        os.environ["CNNKIT_CACHE_DIR"] = before
