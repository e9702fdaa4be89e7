"""A run's latent vectors through ONNX Runtime: the same vectors as torch's, used where it pays, torch where it
cannot run."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from cnnkit.data.preprocess import Preprocessing
from cnnkit.feature_cache import graph_folder
from cnnkit.inference.network import NetworkPredictor
from cnnkit.latent.embedding import OnnxEmbeddings, embedding_predictor
from cnnkit.latent.features import folder_features
from cnnkit.models import create_model
from cnnkit.onnx_graph import MAX_DIFFERENCE
from tests.conftest import pattern_image, write_image_folder

PREP = Preprocessing((32, 32), 3, (0.5, 0.45, 0.4), (0.25, 0.25, 0.25))


@pytest.fixture()
def predictor(tmp_path, monkeypatch) -> NetworkPredictor:
    """A torch network with a hidden layer before its classifier (the latent vectors are that layer's)."""
    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(0)
    return NetworkPredictor(create_model("test_efficientnet", 3, 3, hidden=16).eval(), ["a", "b", "c"], PREP)


def patterned(count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([np.asarray(pattern_image(i % 3, rng, 32, "colour")) for i in range(count)])


def test_onnx_runtime_gives_the_networks_latent_vectors_and_torch_keeps_predicting(predictor):
    fast = embedding_predictor(predictor, images=100)
    images = patterned(12)
    vectors, reference = fast.embed_arrays(images, batch_size=5), predictor.embed_arrays(images)
    assert isinstance(fast, OnnxEmbeddings) and fast.graph is not None and vectors.shape == (12, 16)
    assert np.abs(vectors - reference).max() <= MAX_DIFFERENCE * np.abs(reference).max()
    assert np.array_equal(fast.predict_arrays(images), predictor.predict_arrays(images))
    assert len(list(graph_folder().glob("*.onnx"))) == 1


def test_a_few_images_keep_torch_until_the_graph_exists(predictor):
    assert embedding_predictor(predictor, images=3) is predictor  # an export would cost more than it saves
    embedding_predictor(predictor, images=100).embed_arrays(patterned(4))
    assert isinstance(embedding_predictor(predictor, images=3), OnnxEmbeddings)


def test_torch_embeds_where_onnxruntime_cannot_be_imported(predictor, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert embedding_predictor(predictor, images=100) is predictor


def test_the_features_of_a_folder_come_from_onnx_runtime(predictor, tmp_path):
    data = write_image_folder(tmp_path / "data", ["a", "b"], 32, size=32)  # 64 images: the graph pays
    arrays = folder_features(predictor, data)
    paths = [str(p) for p in arrays["paths"]]
    reference, _ = predictor.embed_files(paths)
    assert len(list(graph_folder().glob("*.onnx"))) == 1
    assert arrays["features"].shape == (64, 16)
    assert np.abs(arrays["features"] - reference).max() <= MAX_DIFFERENCE * np.abs(reference).max()
