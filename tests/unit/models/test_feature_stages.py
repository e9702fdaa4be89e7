"""``feature_stages``: a backbone's last stages pooled and concatenated, inside the network (so export and predict need
nothing else), cached in one backbone pass with the plain features (so the multi-stage head costs only its fitting)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.data.preprocess import Preprocessing
from cnnkit.errors import ModelError
from cnnkit.feature_cache import cached_features
from cnnkit.models import create_model
from cnnkit.models.transfer import area_resample
from tests.conftest import network_run
from tests.unit.stage_textures import register, texture

PREP = Preprocessing((40, 40), 3, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def networks(stages: int, name: str = "test_efficientnet"):
    torch.manual_seed(0)
    return create_model(name, 2, 3, feature_stages=stages).eval()


def test_the_pooled_vector_is_each_stages_global_average_last_first():
    """At 40 px the stages' maps (2x2, 3x3, 5x5) do not divide one another: the area resampling keeps each mean."""
    model, x = networks(3), torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        pooled = model.pool(model.forward_features(x))
        last, (stride8, stride16) = model.backbone.forward_intermediates(x, indices=[2, 3])
    expected = torch.cat([last.mean((2, 3)), stride16.mean((2, 3)), stride8.mean((2, 3))], 1)
    assert model.num_features == pooled.shape[1] == sum(model.stage_widths) == 256 + 48 + 32
    assert torch.allclose(pooled, expected, atol=1e-5)
    assert model.forward_features(x).shape[-2:] == last.shape[-2:]  # still one map, on the last stage's grid


def test_one_stage_is_the_backbone_as_before():
    model, x = networks(1), torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        assert torch.equal(model.forward_features(x), model.backbone.forward_features(x))
    assert model.num_features == model.backbone.num_features


def test_area_resampling_keeps_the_mean_and_is_averaging_where_sizes_divide():
    x = torch.rand(1, 2, 15, 9)
    assert torch.allclose(area_resample(x, (8, 4)).mean((2, 3)), x.mean((2, 3)), atol=1e-6)
    y = torch.rand(1, 2, 8, 8)
    assert torch.allclose(area_resample(y, (4, 2)), torch.nn.functional.avg_pool2d(y, (2, 4)), atol=1e-6)


@pytest.mark.parametrize("stages", [0, 4, 1.5, True])
def test_stages_the_backbone_does_not_have_are_refused_by_name(stages):
    with pytest.raises(ModelError, match="feature_stages"):
        create_model("test_efficientnet", 2, 3, feature_stages=stages)


def test_the_multi_stage_features_reuse_the_plain_cache_and_compute_nothing_more(tmp_path):
    """A plain run caches every stage's features in its one backbone pass; the multi-stage network then reads them
    (none computed), under the plain features' unchanged entries, and they are what the network itself computes."""
    rng = np.random.default_rng(0)
    images = np.stack([np.asarray(texture(k % 2, rng, 40)) for k in range(6)])
    plain, plain_stats = cached_features(networks(1), images, PREP, cache_dir=tmp_path, backend="torch",
                                         progress=False)
    model = networks(3)
    features, stats = cached_features(model, images, PREP, cache_dir=tmp_path, backend="torch", progress=False)
    assert (plain_stats.computed, stats.computed, stats.reused) == (6, 0, 6)
    assert stats.directory == plain_stats.directory  # the plain features' key is unchanged
    assert torch.equal(features[..., :plain.shape[-1]], plain) and features.shape[-1] == model.num_features
    from cnnkit.data.preprocess import normalize

    x = normalize(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, PREP)
    with torch.no_grad():
        assert torch.allclose(features[:, 0], model.pool(model.forward_features(x)), atol=1e-5)


def test_onnx_runtime_gives_every_stages_features_as_torch(tmp_path):
    rng = np.random.default_rng(1)
    images = np.stack([np.asarray(texture(k % 2, rng, 40)) for k in range(8)])
    model = networks(2)
    ort, stats = cached_features(model, images, PREP, cache_dir=tmp_path / "a", backend="onnxruntime",
                                 progress=False)
    reference, _ = cached_features(model, images, PREP, cache_dir=tmp_path / "b", backend="torch", progress=False)
    assert stats.backend == "onnxruntime"
    assert float((ort - reference).abs().max()) <= 1e-4 * float(reference.abs().max())


def test_the_texture_backbone_sees_the_classes_only_before_its_last_stage():
    """The fixture's premise: the last stage's pooled features are the same for stripes and checks of one colour."""
    register()
    rng = np.random.default_rng(0)
    images = [texture(k, np.random.default_rng(5), 32) for k in (0, 1)] + [texture(k, rng, 32) for k in (0, 1)]
    x = torch.from_numpy(np.stack([np.asarray(i) for i in images])).permute(0, 3, 1, 2).float() / 127.5 - 1
    model = networks(2, "stage_textures_test")
    with torch.no_grad():
        pooled = model.pool(model.forward_features(x))
    assert torch.allclose(pooled[0, :8], pooled[1, :8], atol=0.05)  # same colour: the last stage cannot tell
    vertical = pooled[:2, 11:13]  # the stage before it: the rectified vertical differences, strong in checks only
    assert vertical[1].min() > 5 * vertical[0].max()


@pytest.mark.slow
def test_a_multi_stage_run_exports_and_predicts_as_torch(trained_run, tmp_path):
    from cnnkit.evaluation.evaluate import evaluate_run
    from cnnkit.export.run import export_run
    from cnnkit.inference import Predictor
    from cnnkit.run import RunFolder

    run = network_run("test_efficientnet", trained_run, tmp_path / "stages", 48, {"feature_stages": 3})
    assert export_run(run).max_difference <= 1e-4
    folder = RunFolder(run)
    images = [folder.data_root(split) / path for split in [folder.read_split()] for path, _ in split.splits["test"]]
    torch_p = Predictor.load(run, backend="torch").predict_proba(images)
    onnx_p = Predictor.load(run, backend="onnx").predict_proba(images)
    assert np.abs(torch_p - onnx_p).max() <= 1e-4 and (torch_p.argmax(1) == onnx_p.argmax(1)).all()
    assert "accuracy" in evaluate_run(run, out=tmp_path / "eval", report=False).metrics
