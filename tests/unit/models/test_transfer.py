"""Pretrained backbones: the offline ImageNet weights, freezing, fine-tuning, the feature cache, save and load."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.config import TrainConfig
from cnnkit.data.decode import load_image
from cnnkit.data.preprocess import Preprocessing, normalize
from cnnkit.errors import CnnkitError, ModelError
from cnnkit.models import TransferNet, create_model
from cnnkit.models.pretrained import (
    LITE0_NORMALIZATION,
    lite0_imagenet,
    lite0_package_tensors,
    load_by_name,
    load_pretrained,
    read_state_dict,
)
from cnnkit.feature_cache import cached_features
from cnnkit.weights import save_weights
from tests.conftest import write_image_folder

IMAGENET_CATS = {281, 282, 283, 284, 285, 286, 287}  # tabby, tiger cat, Persian, Siamese, Egyptian cat, cougar, lynx
IMAGENET_COFFEE = {504, 967, 968}  # coffee mug, espresso, cup


def lite0_input(path: Path) -> torch.Tensor:
    """What cnnkit feeds the backbone: timm's eval resize and centre crop, bicubic, scaled to [-1, 1]."""
    array = load_image(path, (224, 224), 3, "bicubic", crop_pct=0.875)
    x = torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float() / 255.0
    return normalize(x, Preprocessing((224, 224), 3, *LITE0_NORMALIZATION))


@pytest.mark.parametrize("picture, expected", [("chelsea", IMAGENET_CATS), ("coffee", IMAGENET_COFFEE)])
def test_packaged_imagenet_weights_recognise_chelsea_and_coffee(picture, expected, tmp_path):
    skimage_data = pytest.importorskip("skimage.data")
    path = tmp_path / f"{picture}.png"
    Image.fromarray(getattr(skimage_data, picture)()).save(path)
    with torch.no_grad():
        top = lite0_imagenet()(lite0_input(path)).softmax(1)[0].topk(3).indices.tolist()
    assert top[0] in expected, top


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite1_and_lite2_pair_every_tensor_and_recognise_the_pictures(name, tmp_path):
    """Each with its own input size and crop (timm's config), the same [-1, 1] scaling as Lite0."""
    from cnnkit.models.pretrained import PACKAGED, package_tensors, packaged_imagenet
    from cnnkit.models.transfer import backbone_config

    pytest.importorskip(PACKAGED[name][1], reason=f"pip install 'cnnkit[lite]' brings {PACKAGED[name][0]}")
    skimage_data = pytest.importorskip("skimage.data")
    tensors, _ = package_tensors(name)
    model = packaged_imagenet(name)
    assert len(tensors) == len(model.state_dict()) == 386
    assert all(torch.equal(t, v) for t, v in zip(tensors, model.state_dict().values()))
    cfg = backbone_config(name)
    size = cfg["input_size"][1:]
    for picture, expected in (("chelsea", IMAGENET_CATS), ("coffee", IMAGENET_COFFEE)):
        path = tmp_path / f"{picture}.png"
        Image.fromarray(getattr(skimage_data, picture)()).save(path)
        array = load_image(path, size, 3, "bicubic", crop_pct=cfg["crop_pct"])
        x = normalize(torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float() / 255.0,
                      Preprocessing(size, 3, *LITE0_NORMALIZATION))
        with torch.no_grad():
            assert model(x).softmax(1)[0].argmax().item() in expected, (name, picture)


def test_the_package_pairs_all_296_tensors_with_timm():
    tensors, _ = lite0_package_tensors()
    assert len(tensors) == 296
    model = create_model("efficientnet_lite0", 5)
    load_pretrained(model, "efficientnet_lite0")
    assert torch.equal(model.backbone.conv_stem.weight, tensors[0])
    assert torch.equal(model.backbone.bn2.running_var, tensors[-4])  # the last backbone tensors before _fc


def test_weights_from_a_file_are_checked_by_name_and_shape(tmp_path):
    from safetensors.torch import save_file

    reference = create_model("efficientnet_lite0", 2)
    load_pretrained(reference, "efficientnet_lite0")
    state = reference.backbone.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    torch.save({"state_dict": state}, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        model = create_model("efficientnet_lite0", 2)
        load_pretrained(model, "efficientnet_lite0", weights=tmp_path / name)
        assert all(torch.equal(a, b) for a, b in zip(model.backbone.state_dict().values(), state.values()))
    broken = dict(state)
    broken["conv_stem.weight"] = torch.zeros(3, 3, 3, 3)
    with pytest.raises(ModelError, match="wrong shapes.*conv_stem"):
        load_by_name(create_model("efficientnet_lite0", 2), broken, "test")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="junk.pth could not be read"):
        read_state_dict(tmp_path / "junk.pth")


def test_offline_pretrained_weights_fail_with_the_documented_message(monkeypatch, tmp_path, capsys):
    from cnnkit.cli import main
    from cnnkit.models import pretrained

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(pretrained, "hub_reachable", lambda *a, **k: False)  # never touch the network in a test
    data = write_image_folder(tmp_path / "d", ["a", "b"], 4)
    code = main(["train", str(data), "--model", "resnet18", "--pretrained", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "Pretrained weights for 'resnet18' are not on this machine" in err and "--weights resnet18.pth" in err
    assert not (tmp_path / "run").exists()  # it failed before making a run folder


def images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_feature_cache_is_reused_and_invalidated(tmp_path):
    model = create_model("efficientnet_lite0", 2)
    model.set_trainable_stages(0)
    prep = Preprocessing((32, 32), 3, (0.5,) * 3, (0.5,) * 3)
    batch = images(6)
    first, stats = cached_features(model, batch, prep, cache_dir=tmp_path, progress=False)
    assert first.shape == (6, 1, 1280) and (stats.computed, stats.reused) == (6, 0)
    again, stats = cached_features(model, batch, prep, cache_dir=tmp_path, progress=False)
    assert torch.equal(again, first) and (stats.computed, stats.reused) == (0, 6)
    changed = batch.copy()
    changed[2, 0, 0] ^= 1  # one pixel of one image
    _, stats = cached_features(model, changed, prep, cache_dir=tmp_path, progress=False)
    assert (stats.computed, stats.reused) == (1, 5)
    with torch.no_grad():
        model.backbone.conv_head.weight[0, 0] += 0.1  # another backbone
    _, stats = cached_features(model, batch, prep, cache_dir=tmp_path, progress=False)
    assert (stats.computed, stats.reused) == (6, 0)
    views, stats = cached_features(model, batch, prep, views=3, augment="flip,rotate=30", cache_dir=tmp_path,
                                   progress=False)
    assert views.shape == (6, 3, 1280) and stats.computed == 6
    assert not torch.allclose(views[:, 0], views[:, 2])


@pytest.fixture(scope="module")
def small_rgb(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("rgb"), ["left", "right", "top"], 12, size=48)


def backbone_state(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {k[len("backbone."):]: v for k, v in load_file(str(run / "model.safetensors")).items()
            if k.startswith("backbone.")}


def packaged_backbone() -> dict[str, torch.Tensor]:
    model = create_model("efficientnet_lite0", 2)
    load_pretrained(model, "efficientnet_lite0")
    return model.backbone.state_dict()


@pytest.mark.slow  # 3 s: the quick suite keeps the fine-tuning test
def test_transfer_freezes_the_backbone_and_caches_features(small_rgb, tmp_path, monkeypatch):
    from cnnkit.evaluation.evaluate import evaluate_run
    from cnnkit.training.fit import train

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    config = TrainConfig(model="efficientnet_lite0", pretrained=True, image_size=(64, 64), epochs=15, lr=0.01)
    result = train(small_rgb, tmp_path / "run", config, progress=False)
    saved, original = backbone_state(tmp_path / "run"), packaged_backbone()
    assert saved.keys() == original.keys()
    assert all(torch.equal(saved[k], original[k]) for k in original)  # weights and batch-norm statistics
    config_data = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config_data["training"]["strategy"] == "transfer"
    assert config_data["preprocessing"]["mean"] == [0.5, 0.5, 0.5] and config_data["preprocessing"]["crop_pct"]
    cache, counts = config_data["feature_cache"], config_data["data"]["counts"]
    cached = sum(counts["train"].values()) + sum(counts["val"].values())  # the test split never goes through the cache
    assert cache["used"] and cache["computed"] == cached == 30 and cache["reused"] == 0
    assert config_data["result"]["phases"][0]["trainable_params"] == 1280 * 3 + 3
    assert evaluate_run(result.run_dir).metrics["accuracy"] > 0.5  # above chance (1/3)
    # The same images again: every feature comes from the cache.
    train(small_rgb, tmp_path / "run2", config, progress=False)
    cache = json.loads((tmp_path / "run2" / "config.json").read_text())["feature_cache"]
    assert cache["computed"] == 0 and cache["reused"] == 30


def test_a_finetuning_step_changes_only_the_unfrozen_stages():
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from cnnkit.training.module import ClassifierModule

    model = create_model("efficientnet_lite0", 3)
    load_pretrained(model, "efficientnet_lite0")
    original = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.set_trainable_stages(1)
    config = TrainConfig(model="efficientnet_lite0", pretrained=True, lr=0.01)
    module = ClassifierModule(model, config, Preprocessing((64, 64), 3, (0.5,) * 3, (0.5,) * 3), backbone_lr=0.01)
    data = TensorDataset(torch.from_numpy(images(8, 64)).permute(0, 3, 1, 2).contiguous(), torch.arange(8) % 3)
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, DataLoader(data, batch_size=4))
    after = model.backbone.state_dict()
    changed = {k for k in original if not torch.equal(after[k], original[k])}
    last_stage = {k for k in original if k.startswith(("blocks.6.", "conv_head.", "bn2."))}
    assert changed and changed <= last_stage  # the last stage learned, nothing before it moved
    assert not any("running_" in k or "num_batches" in k for k in changed)  # batch-norm statistics as pretrained


@pytest.mark.slow  # trains a network (or starts the CLI in subprocesses): end to end
def test_finetune_runs_the_head_then_the_backbone(small_rgb, tmp_path, monkeypatch):
    from cnnkit.training.fit import train

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    config = TrainConfig(model="efficientnet_lite0", pretrained=True, image_size=(64, 64), epochs=2,
                         strategy="finetune", unfreeze=1, finetune_epochs=2, finetune_lr=1e-4, early_stopping=0,
                         lr=0.01)
    train(small_rgb, tmp_path / "run", config, progress=False)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    tuned = {k[len("model.backbone."):]: v for k, v in state.items() if k.startswith("model.backbone.")}
    original = packaged_backbone()
    last_stage = {k for k in original if k.startswith(("blocks.6.", "conv_head.", "bn2."))}
    changed = {k for k in original if not torch.equal(tuned[k], original[k])}
    assert changed and changed <= last_stage  # the fine-tuning epochs moved the last stage only
    config_data = json.loads((tmp_path / "run" / "config.json").read_text())
    phases = config_data["result"]["phases"]
    assert [p["name"] for p in phases][:2] == ["head", "finetune"] and phases[1]["backbone_lr"] == 1e-4
    assert phases[1]["trainable_params"] > 100 * phases[0]["trainable_params"]
    fell_back = [p["name"] for p in phases][2:] == ["head (fallback)"]
    saved = backbone_state(tmp_path / "run")
    assert all(torch.equal(saved[k], original[k]) for k in original) if fell_back else (
        {k for k in original if not torch.equal(saved[k], original[k])} <= last_stage)
    log = (tmp_path / "run" / "logs" / "metrics.csv").read_text().splitlines()[1:]
    # the solved head, then 2 epochs (and the head re-solved when fine-tuning did not beat it)
    assert sorted({int(line.split(",")[0]) for line in log}) == [0, 1, 2] + ([3] if fell_back else [])
    assert phases[0]["solver"]["method"] == "lbfgs" and phases[0]["solver"]["converged"]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()  # every phase is resumable
    from cnnkit.training.fit import resume

    with pytest.raises(CnnkitError, match="is finished; there is nothing to resume"):
        resume(tmp_path / "run")


def test_a_saved_pretrained_model_predicts_as_in_memory(tmp_path):
    from cnnkit.inference import Predictor

    write_image_folder(tmp_path / "imgs", ["x"], 3, size=80, mode="L")  # grayscale: repeated to 3 channels
    files = sorted((tmp_path / "imgs" / "x").glob("*.png"))
    model = create_model("efficientnet_lite0", 3)
    load_pretrained(model, "efficientnet_lite0")
    model.eval()
    prep = Preprocessing((96, 96), 3, *LITE0_NORMALIZATION, interpolation="bicubic", crop_pct=0.875)
    with torch.no_grad():
        batch = torch.stack([torch.from_numpy(load_image(f, (96, 96), 3, "bicubic", 0.875).copy()) for f in files])
        expected = model(normalize(batch.permute(0, 3, 1, 2).float() / 255.0, prep)).softmax(1).numpy()
    run = tmp_path / "run"
    save_weights(model, run / "model.safetensors")
    (run / "config.json").write_text(json.dumps({
        "model": {"name": "efficientnet_lite0", "options": {}}, "classes": ["a", "b", "c"],
        "preprocessing": prep.to_dict()}))
    predicted = Predictor.load(run).predict_proba(files)
    assert np.allclose(predicted, expected, atol=1e-6)


def test_strategy_needs_a_backbone_and_pretrained_weights():
    with pytest.raises(CnnkitError, match="set `pretrained`") as error:
        TrainConfig(model="efficientnet_lite0", strategy="finetune")
    from cnnkit.cli.options import to_flags

    assert "set --pretrained" in to_flags(str(error.value))  # the CLI names its flag
    assert TrainConfig(model="efficientnet_lite0", weights="w.pth").strategy == "transfer"
    assert isinstance(create_model("efficientnet_lite0", 2), TransferNet)
