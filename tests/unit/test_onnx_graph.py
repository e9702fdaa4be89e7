"""A cached ONNX graph is bound to its export: the SHA-256 of its bytes is recorded when it is exported and checked
before each use, so that a graph replaced by another network's, truncated, or left without its digest is removed and
exported again with a one-line warning, and the features stay torch's, never another network's."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnkit import onnx_graph
from cnnkit.data.preprocess import Preprocessing
from cnnkit.feature_cache import cached_features, graph_folder
from cnnkit.models import create_model
from tests.conftest import pattern_image

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
PREP = Preprocessing((32, 32), 3, (0.5, 0.45, 0.4), (0.25, 0.25, 0.25))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([np.asarray(pattern_image(k % 3, rng, 32, "colour")) for k in range(18)])


def backbone(seed: int):
    torch.manual_seed(seed)
    return create_model("test_efficientnet", 3, 3)


def the_graph(cache: Path) -> Path:
    (graph,) = graph_folder(cache).glob("*.onnx")
    return graph


def another_networks_graph(graph, tmp_path, images):
    """The graph of a network with other weights, a valid ONNX file, in place of ``graph``: run, it gives that
    network's features."""
    cached_features(backbone(1), images[:6], PREP, cache_dir=tmp_path / "other", backend="onnxruntime",
                    progress=False)
    shutil.copyfile(the_graph(tmp_path / "other"), graph)


def truncated(graph, tmp_path, images):
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])


def without_digest(graph, tmp_path, images):
    onnx_graph.digest_path(graph).unlink()


@pytest.mark.parametrize("damage", [another_networks_graph, truncated, without_digest])
def test_a_cached_graph_that_is_not_the_exported_one_is_exported_again_and_features_stay_torchs(
        images, tmp_path, caplog, damage):
    model = backbone(0)
    cached_features(model, images[:6], PREP, cache_dir=tmp_path / "cache", backend="onnxruntime", progress=False)
    graph = the_graph(tmp_path / "cache")
    assert onnx_graph.digest_path(graph).read_text().strip() == onnx_graph.sha256_file(graph)
    damage(graph, tmp_path, images)

    with caplog.at_level(logging.WARNING, logger="cnnkit"):  # images never seen: their features are computed now
        found, stats = cached_features(model, images[6:], PREP, cache_dir=tmp_path / "cache", backend="onnxruntime",
                                       progress=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and f"The cached graph {graph} is not the one exported there" in warnings[0]
    assert "exporting it again" in warnings[0] and "\n" not in warnings[0]
    assert stats.backend == "onnxruntime"
    reference, _ = cached_features(model, images[6:], PREP, cache_dir=tmp_path / "torch", backend="torch",
                                   progress=False)
    assert float((found - reference).abs().max()) <= onnx_graph.MAX_DIFFERENCE * float(reference.abs().max())
    assert onnx_graph.digest_path(graph).read_text().strip() == onnx_graph.sha256_file(graph)  # bound again


def test_a_graph_that_cannot_be_exported_again_is_not_run_and_torch_computes(images, tmp_path, caplog):
    model = backbone(0)
    cached_features(model, images[:6], PREP, cache_dir=tmp_path, backend="onnxruntime", progress=False)
    graph = the_graph(tmp_path)
    truncated(graph, tmp_path, images)
    with caplog.at_level(logging.WARNING, logger="cnnkit"):
        key = graph.name.removesuffix(f"-g{onnx_graph.GRAPH_VERSION}.onnx")
        found = onnx_graph.cached_graph(model, PREP, key, graph.parent, images, export=False)
    assert found is None and not graph.exists() and not onnx_graph.digest_path(graph).exists()
    assert "computing with torch" in caplog.text
