"""A transfer run's suggestions from the feature cache: the same ranking and numbers as its network gives, and a run
learnt again (the same frozen backbone, a new head) computes no pool feature again: the labelling loop's refresh."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cnnkit.suggest import pool as suggest_pool
from cnnkit.suggest import suggest

TRANSFER_RUN = Path(__file__).resolve().parents[2] / "fixtures" / "f7c7ce8" / "transfer_test_efficientnet"


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return Path(shutil.copytree(TRANSFER_RUN, tmp_path / "run"))


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    """The run's own images, copied as a pool with one pixel changed (not left out as the run's own)."""
    from PIL import Image

    root = tmp_path / "pool"
    for i, path in enumerate(sorted((TRANSFER_RUN / "dataset").rglob("*.png"))[:24]):
        image = np.array(Image.open(path).convert("RGB"))
        image[0, 0] = (image[0, 0].astype(int) + 1) % 256
        (root / path.parent.name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / path.parent.name / f"{i}.png")
    return root


@pytest.mark.parametrize("strategy", ["margin", "hybrid"])
def test_a_transfer_runs_suggestions_from_the_cache_are_its_networks(run, pool, monkeypatch, strategy):
    cached = suggest(run, pool, n=10, query_strategy=strategy)
    monkeypatch.setattr(suggest_pool, "transfer_head", lambda run, predictor: False)  # the network's own pass
    network = suggest(run, pool, n=10, query_strategy=strategy)
    assert [r.path for r in cached.rows] == [r.path for r in network.rows]
    for a, b in zip(cached.rows, network.rows):
        assert a.predicted == b.predicted and a.probability == pytest.approx(b.probability, abs=1e-4)
        assert (a.distance is None) == (b.distance is None)
        if a.distance is not None:
            assert a.distance == pytest.approx(b.distance, rel=1e-3, abs=1e-4)


def test_a_run_learnt_again_computes_no_pool_feature_again(run, pool, tmp_path, monkeypatch):
    import torch

    from cnnkit import feature_cache
    from cnnkit.inference import Predictor
    from cnnkit.weights import save_weights

    suggest(run, pool, n=5)
    again = Path(shutil.copytree(run, tmp_path / "run-learn1"))
    network = Predictor.load(again, backend="torch").model
    with torch.no_grad():  # a new head on the same backbone, as learning again with a solved head gives
        network.classifier.weight.mul_(-1.0)
    save_weights(network, again / "model.safetensors")
    computed = []
    original = feature_cache.cached_features

    def counting(*args, **kwargs):
        features, stats = original(*args, **kwargs)
        computed.append(stats.computed)
        return features, stats

    monkeypatch.setattr(feature_cache, "cached_features", counting)
    result = suggest(again, pool, n=5)
    assert computed and sum(computed) == 0
    assert len(result.rows) == 5
