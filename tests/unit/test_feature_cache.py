"""The feature cache: ONNX Runtime and torch give the same features (and a solved head the same classes), ONNX
Runtime is used where it can be and torch where it cannot, and an interrupted extraction leaves only whole entries."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnkit import feature_cache, onnx_graph
from cnnkit.data.preprocess import Preprocessing
from cnnkit.errors import ConfigError
from cnnkit.feature_cache import cached_features, graph_folder
from cnnkit.models import create_model
from cnnkit.models.linear_head import fit_softmax
from tests.conftest import pattern_image

PREP = Preprocessing((32, 32), 3, (0.5, 0.45, 0.4), (0.25, 0.25, 0.25))


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    """Three classes of 12 patterned 32x32 images (the fixture set), and their labels."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 12)
    return np.stack([np.asarray(pattern_image(int(k), rng, 32, "colour")) for k in labels]), labels


@pytest.fixture()
def backbone():
    torch.manual_seed(0)
    return create_model("test_efficientnet", 3, 3)


def graphs(cache) -> list:
    return sorted(p.name for p in graph_folder(cache).glob("*.onnx"))


@pytest.mark.parametrize("flip", [False, True])
def test_onnx_runtime_gives_torchs_features_and_a_solved_heads_classes(images, backbone, tmp_path, flip):
    backbone.flip_average = flip  # the mirror image's features averaged in, inside the graph
    x, labels = images
    ort, ort_stats = cached_features(backbone, x, PREP, cache_dir=tmp_path / "a", backend="onnxruntime",
                                     progress=False)
    reference, torch_stats = cached_features(backbone, x, PREP, cache_dir=tmp_path / "b", backend="torch",
                                             progress=False)
    assert (ort_stats.backend, torch_stats.backend) == ("onnxruntime", "torch")
    assert float((ort - reference).abs().max()) <= onnx_graph.MAX_DIFFERENCE * float(reference.abs().max())
    head, _ = fit_softmax(reference[:, 0].numpy(), labels, 3, C=1.0)
    assert (head.probabilities(ort[:, 0].numpy()).argmax(1)
            == head.probabilities(reference[:, 0].numpy()).argmax(1)).all()


def test_onnx_runtime_is_used_once_there_are_enough_images_and_its_graph_is_kept(images, backbone, tmp_path,
                                                                                  monkeypatch):
    x, _ = images
    few, stats = cached_features(backbone, x[:4], PREP, cache_dir=tmp_path, progress=False)
    assert stats.backend == "torch" and graphs(tmp_path) == []  # an export would cost more than 4 images
    monkeypatch.setattr(feature_cache, "ORT_MIN_IMAGES", 8)
    _, stats = cached_features(backbone, x[4:20], PREP, cache_dir=tmp_path, progress=False)
    assert stats.backend == "onnxruntime" and len(graphs(tmp_path)) == 1
    monkeypatch.setattr(onnx_graph, "_export_fast", lambda *a: pytest.fail("the kept graph is exported again"))
    _, stats = cached_features(backbone, x[20:22], PREP, cache_dir=tmp_path, progress=False)
    assert stats.backend == "onnxruntime"  # a graph on disk is used for any number of images


def test_torch_computes_where_onnxruntime_cannot_be_imported(images, backbone, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    x, _ = images
    features, stats = cached_features(backbone, x, PREP, cache_dir=tmp_path / "a", backend="auto", progress=False)
    reference, _ = cached_features(backbone, x, PREP, cache_dir=tmp_path / "b", backend="torch", progress=False)
    assert stats.backend == "torch" and graphs(tmp_path / "a") == []
    assert torch.equal(features, reference)
    with pytest.raises(ConfigError, match="onnxruntime"):
        cached_features(backbone, x, PREP, cache_dir=tmp_path / "c", backend="onnxruntime", progress=False)


def test_an_export_that_fails_is_remembered_and_torch_computes(images, backbone, tmp_path, monkeypatch):
    calls = []

    def broken(module, sample, path):
        calls.append(path)
        path.write_bytes(b"half a graph")
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(onnx_graph, "_export_fast", broken)
    x, _ = images
    for _ in range(2):
        _, stats = cached_features(backbone, x[:6], PREP, cache_dir=tmp_path, backend="onnxruntime", progress=False)
        assert stats.backend == "torch"
        for entry in Path(stats.directory).glob("*.npy"):
            entry.unlink()  # computed again: the refusal, not the entries, must spare the second export
    assert len(calls) == 1 and graphs(tmp_path) == []
    assert "unsupported operator" in next(graph_folder(tmp_path).glob("*.refused")).read_text()
    assert not [p for p in graph_folder(tmp_path).iterdir() if p.name.endswith(".tmp")]


def test_a_graph_that_differs_from_torch_is_not_kept(images, backbone, tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_graph, "MAX_DIFFERENCE", -1.0)  # any difference, even 0, is too much
    x, _ = images
    _, stats = cached_features(backbone, x[:6], PREP, cache_dir=tmp_path, backend="onnxruntime", progress=False)
    assert stats.backend == "torch" and graphs(tmp_path) == []
    assert "differs from torch" in next(graph_folder(tmp_path).glob("*.refused")).read_text()


def test_an_extraction_stopped_between_writes_leaves_only_whole_entries(images, backbone, tmp_path, monkeypatch):
    """The third entry's write dies halfway (a kill, a full disk): the folder holds two entries, each whole, and the
    next run reuses them and computes the rest, as a run that was never stopped would."""
    x, _ = images
    real_save, saved = np.save, []

    def dying(file, array, allow_pickle=True):
        if len(saved) == 2:
            file.write(b"\x93NUMPY half an entry")
            raise KeyboardInterrupt
        saved.append(1)
        real_save(file, array, allow_pickle=allow_pickle)

    monkeypatch.setattr(np, "save", dying)
    with pytest.raises(KeyboardInterrupt):
        cached_features(backbone, x[:8], PREP, cache_dir=tmp_path / "a", backend="onnxruntime", progress=False)
    monkeypatch.setattr(np, "save", real_save)
    folder = next(p for p in (tmp_path / "a").iterdir() if p.name != "graphs")
    assert len(list(folder.glob("*.npy"))) == 2
    assert all(np.load(p).shape == (1, backbone.num_features) for p in folder.glob("*.npy"))
    features, stats = cached_features(backbone, x[:8], PREP, cache_dir=tmp_path / "a", backend="onnxruntime",
                                      progress=False)
    assert (stats.reused, stats.computed) == (2, 6)
    clean, _ = cached_features(backbone, x[:8], PREP, cache_dir=tmp_path / "b", backend="onnxruntime",
                               progress=False)
    assert torch.equal(features, clean)


def test_an_export_stopped_halfway_leaves_no_graph(images, backbone, tmp_path, monkeypatch):
    def interrupted(module, sample, path):
        path.write_bytes(b"half a graph")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_graph, "_export_fast", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cached_features(backbone, images[0][:6], PREP, cache_dir=tmp_path, backend="onnxruntime", progress=False)
    assert list(graph_folder(tmp_path).iterdir()) == []  # neither a graph nor a refusal: the next run exports


def test_a_damaged_entry_is_computed_again(images, backbone, tmp_path):
    x, _ = images
    first, stats = cached_features(backbone, x[:3], PREP, cache_dir=tmp_path, backend="torch", progress=False)
    entry = sorted(Path(stats.directory).glob("*.npy"))[0]
    np.save(entry, np.zeros((2, 3), np.float32))  # readable, but not this cache's shape
    again, stats = cached_features(backbone, x[:3], PREP, cache_dir=tmp_path, backend="torch", progress=False)
    assert (stats.reused, stats.computed) == (2, 1)
    assert torch.allclose(first, again, atol=1e-6)  # one image alone instead of three: another batch size


CHILD = """
import sys
from pathlib import Path
import numpy as np, torch
from cnnkit.feature_cache import cached_features
from cnnkit.models import create_model
from tests.unit.test_feature_cache import PREP
torch.manual_seed(0)
images = np.random.default_rng(1).integers(0, 256, (4000, 32, 32, 3), dtype=np.uint8)
cached_features(create_model("test_efficientnet", 3, 3), images, PREP, cache_dir=Path(sys.argv[1]), batch_size=8,
                backend="torch", progress=False)
"""


@pytest.mark.slow
def test_a_killed_extraction_leaves_only_whole_entries(tmp_path):
    """A process killed (SIGKILL) while it writes entries: each entry left is whole and is read back."""
    import os
    import signal
    import subprocess
    import time

    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=root,
                             env={**os.environ, "PYTHONPATH": str(root)})
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("*/*.npy"))) < 40 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    entries = list(tmp_path.glob("*/*.npy"))
    assert 40 <= len(entries) < 4000, "the child was not killed while it wrote"
    torch.manual_seed(0)
    model = create_model("test_efficientnet", 3, 3)
    images = np.random.default_rng(1).integers(0, 256, (4000, 32, 32, 3), dtype=np.uint8)
    assert all(np.load(p).shape == (1, model.num_features) for p in entries)
    _, stats = cached_features(model, images[:200], PREP, cache_dir=tmp_path, backend="torch", progress=False)
    assert (stats.reused, stats.computed) == (min(len(entries), 200), 200 - min(len(entries), 200))
