"""``concat_backbones``: several backbones in one network, their pooled features concatenated (so export and predict
need nothing else), each backbone's features cached under its own key (so the union costs only what is not cached)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.data.preprocess import Preprocessing, normalize
from cnnkit.errors import ModelError
from cnnkit.feature_cache import cached_features
from cnnkit.models import create_model
from tests.conftest import network_run
from tests.unit.stage_textures import texture
from tests.unit.union_textures import register

PREP = Preprocessing((40, 40), 3, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def network(name: str = "test_efficientnet", seed: int = 0, **options):
    torch.manual_seed(seed)
    return create_model(name, 2, 3, **options).eval()


def images(count: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([np.asarray(texture(k % 2, rng, 40)) for k in range(count)])


def test_the_pooled_vector_is_each_backbones_in_order_the_first_unchanged():
    """Backbones of other strides (8 and 2 here): the others' maps are resampled by area onto the first's grid,
    which keeps each one's global average exactly."""
    colour, texture_only = register()
    model, x = network(colour, concat_backbones=(texture_only, "test_efficientnet")), torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        pooled = model.pool(model.forward_features(x))
        parts = [b.forward_features(x).mean((2, 3)) for b in (model.backbone, *model.extra_backbones)]
    assert model.num_features == pooled.shape[1] == 8 + 4 + 256
    assert torch.allclose(pooled, torch.cat(parts, 1), atol=1e-5)
    assert model.forward_features(x).shape[-2:] == model.backbone.forward_features(x).shape[-2:]


def test_stages_and_mirror_averaging_apply_to_every_backbone():
    model = network(concat_backbones="test_efficientnet_gn", feature_stages=2, flip_average=True)
    x = torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        pooled = model.pool(model.forward_features(x))
        members = [m.pool(m.forward_features(x)) for m in model.member_networks()]
    assert all(m.feature_stages == 2 and m.flip_average for m in model.member_networks())
    assert torch.allclose(pooled, torch.cat(members, 1), atol=1e-5) and pooled.shape[1] == 2 * (256 + 48)


@pytest.mark.parametrize("names", [("",), (3,)])
def test_backbones_that_are_not_names_are_refused_by_name(names):
    with pytest.raises(ModelError, match="concat_backbones"):
        network(concat_backbones=names)


def test_the_union_reads_each_backbones_cache_and_computes_nothing_more(tmp_path):
    """Single-backbone networks cache their features; the union of the same backbones (same weights, same input
    setting) then reads them all (no backbone pass), and they are what the union itself computes."""
    model = network(concat_backbones=("test_efficientnet_gn",))
    pixels = images()
    singles = [cached_features(m, pixels, PREP, cache_dir=tmp_path, backend="torch", progress=False)
               for m in model.member_networks()]
    features, stats = cached_features(model, pixels, PREP, cache_dir=tmp_path, backend="torch", progress=False)
    assert [s.computed for _, s in singles] == [6, 6] and (stats.computed, stats.reused) == (0, 12)
    assert torch.equal(features, torch.cat([f for f, _ in singles], -1))
    x = normalize(torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255, PREP)
    with torch.no_grad():
        assert torch.allclose(features[:, 0], model.pool(model.forward_features(x)), atol=1e-5)


def test_onnx_runtime_gives_the_unions_features_as_torch(tmp_path):
    model, pixels = network(concat_backbones="test_efficientnet_gn"), images(8, 1)
    ort, stats = cached_features(model, pixels, PREP, cache_dir=tmp_path / "a", backend="onnxruntime",
                                 progress=False)
    reference, _ = cached_features(model, pixels, PREP, cache_dir=tmp_path / "b", backend="torch", progress=False)
    assert stats.backend == "onnxruntime"
    assert float((ort - reference).abs().max()) <= 1e-4 * float(reference.abs().max())


def test_each_backbone_takes_its_own_pretrained_weights_and_a_weights_file_is_refused(tmp_path, monkeypatch):
    from cnnkit.models.pretrained import load_pretrained

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the fixtures' weights are in their timm configs
    colour, texture_only = register()
    model = network(colour, concat_backbones=texture_only)
    torch.nn.init.zeros_(model.extra_backbones[0].stem.weight)
    source = load_pretrained(model, colour)["source"]
    assert source.count("timm hub") == 2 and float(model.extra_backbones[0].stem.weight.detach().abs().sum()) == 8
    copy = network(colour, concat_backbones=texture_only, seed=1)
    copy.load_backbone_state_dict(model.backbone_state_dict())
    state = model.backbone_state_dict()
    assert any(k.startswith("extra_backbones.") for k in state)
    assert all(torch.equal(v, state[k]) for k, v in copy.backbone_state_dict().items())
    with pytest.raises(ModelError, match="`weights`"):
        load_pretrained(model, colour, tmp_path / "w.safetensors")
    with pytest.raises(ModelError, match="normalisation"):
        load_pretrained(network(colour, concat_backbones="test_efficientnet"), colour)


def test_a_frozen_union_keeps_every_backbone_frozen_in_training():
    model = network(concat_backbones="test_efficientnet_gn")
    model.set_trainable_stages(1)
    model.train()
    assert not any(p.requires_grad for p in model.extra_backbones.parameters())
    assert not any(m.training for m in model.extra_backbones.modules())
    model.set_trainable_stages(-1)
    assert all(p.requires_grad for p in model.extra_backbones.parameters())


@pytest.mark.slow
def test_a_union_run_exports_and_predicts_as_torch(trained_run, tmp_path):
    from cnnkit.export.run import export_run
    from cnnkit.inference import Predictor
    from cnnkit.run import RunFolder

    run = network_run("test_efficientnet", trained_run, tmp_path / "union", 48,
                      {"concat_backbones": ["test_efficientnet_gn"], "feature_stages": 2})
    assert export_run(run).max_difference <= 1e-4
    folder = RunFolder(run)
    paths = [folder.data_root(split) / path for split in [folder.read_split()] for path, _ in split.splits["test"]]
    torch_p = Predictor.load(run, backend="torch").predict_proba(paths)
    onnx_p = Predictor.load(run, backend="onnx").predict_proba(paths)
    assert np.abs(torch_p - onnx_p).max() <= 1e-4 and (torch_p.argmax(1) == onnx_p.argmax(1)).all()
