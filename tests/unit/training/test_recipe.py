"""Fine-tuning's recipe (discriminative rates, warm-up then cosine, batch norm in inference mode, channels_last,
default augmentation) and the head's features averaged with the mirror image's when cross-validation prefers them."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.config import TrainConfig
from cnnkit.models import create_model
from cnnkit.models.pretrained import load_pretrained


def lite0(classes: int = 3):
    model = create_model("efficientnet_lite0", classes)
    load_pretrained(model, "efficientnet_lite0")
    return model


def test_discriminative_rates_fall_geometrically_from_the_last_stage_to_the_stem():
    from cnnkit.training.optim import param_groups

    model = lite0()
    model.set_trainable_stages(-1)
    groups = param_groups(model, TrainConfig(model="efficientnet_lite0", pretrained=True, lr=1e-3), backbone_lr=1e-4)
    head, stages = groups[0], groups[1:]
    assert head["lr"] == 1e-3 and {id(p) for p in head["params"]} == {
        id(p) for p in [*model.neck.parameters(), *model.classifier.parameters()]}
    assert len(stages) == len(model.stages()) >= 3
    assert stages[-1]["lr"] == pytest.approx(1e-4) and stages[0]["lr"] == pytest.approx(1e-5)
    ratios = [b["lr"] / a["lr"] for a, b in zip(stages, stages[1:])]
    assert np.allclose(ratios, ratios[0]) and ratios[0] > 1  # geometric, rising towards the output
    every = [id(p) for g in groups for p in g["params"]]
    assert len(every) == len(set(every)) == sum(1 for p in model.parameters() if p.requires_grad)


def test_fine_tuning_warms_up_then_follows_a_cosine_to_zero():
    from cnnkit.training.optim import create_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = create_scheduler(optimizer, TrainConfig(), epochs=4, steps=40)
    assert scheduler["interval"] == "step"
    rates = []
    for _ in range(40):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler["scheduler"].step()
    assert rates[0] == pytest.approx(0.1 / 4) and rates[3] == pytest.approx(0.1)  # 4 warm-up steps
    assert all(a <= b for a, b in zip(rates[:4], rates[1:4]))
    assert all(a >= b for a, b in zip(rates[3:], rates[4:])) and rates[-1] < 0.001


def test_batch_norm_stays_in_inference_mode_while_the_whole_backbone_trains():
    model = lite0()
    model.set_trainable_stages(-1)
    model.keep_batch_norm_frozen = True
    model.train()
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and not any(m.training for m in norms)
    before = [m.running_mean.clone() for m in norms]
    model(torch.randn(4, 3, 64, 64) * 3 + 1).sum().backward()
    assert all(torch.equal(a, m.running_mean) for a, m in zip(before, norms))
    assert all(p.grad is not None for p in model.backbone.parameters())  # yet every weight learns


def test_a_mirror_averaging_network_predicts_the_mean_of_both_features():
    model = lite0(2).eval()
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        plain = model.pool(model.forward_features(x))
        mirrored = model.pool(model.forward_features(x.flip(-1)))
        model.flip_average = True
        averaged = model.pool(model.forward_features(x))
        logits = model(x)
    assert torch.allclose(averaged, (plain + mirrored) / 2, atol=1e-5)
    assert torch.allclose(logits, model.classifier(averaged), atol=1e-5)
    assert create_model("efficientnet_lite0", 2, flip_average=True).flip_average  # the record rebuilds it


def write_sided(root, per_class: int, size: int = 48):
    """Two classes told apart only by the side of a bright bar: a mirror image belongs to the other class."""
    rng = np.random.default_rng(0)
    for label in ("left", "right"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
            columns = slice(4, 14) if label == "left" else slice(size - 14, size - 4)
            image[:, columns] = 230
            Image.fromarray(image).save(root / label / f"{i}.png")
    return root


@pytest.mark.slow  # trains a network (or starts the CLI in subprocesses): end to end
def test_mirror_averaging_is_left_out_where_a_flip_changes_the_class(tmp_path, monkeypatch):
    from cnnkit.inference import Predictor
    from cnnkit.training.fit import train

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    data = write_sided(tmp_path / "data", 12)
    trained = train(data, tmp_path / "run", TrainConfig(model="efficientnet_lite0", pretrained=True,
                                                        image_size=(64, 64)), progress=False)
    solver = trained.record.result.phases[0].solver
    assert solver.mirror_helps is False and solver.flip_average is False
    assert not trained.record.model.options.get("flip_average")
    assert not Predictor.load(tmp_path / "run").model.flip_average
    assert trained.record.result.best_val_acc > 0.9  # the plain features tell the sides apart


@pytest.mark.slow  # trains a network (or starts the CLI in subprocesses): end to end
def test_a_kept_mirror_average_goes_into_the_record_and_prediction(tmp_path, monkeypatch):
    """Cross-validation decides: made to prefer the averaged features (the second call), the run keeps them, the
    record says so, and the loaded run predicts with them."""
    import cnnkit.models.linear_head as linear_head
    import cnnkit.training.phases as phases
    from cnnkit.inference import Predictor
    from cnnkit.training.fit import train

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    real, calls = linear_head.choose_by_cv, []

    def prefer_the_second(*args, **kwargs):
        C, scores = real(*args, **kwargs)
        calls.append(C)
        bonus = 0.5 if len(calls) == 2 else 0.0
        return C, [{**s, "cv_acc": s["cv_acc"] + bonus} for s in scores]

    monkeypatch.setattr(phases, "choose_by_cv", prefer_the_second)
    monkeypatch.setattr(phases, "flips_keep_labels", lambda *args, **kwargs: True)  # left and right: they don't
    data = write_sided(tmp_path / "data", 8)
    trained = train(data, tmp_path / "run", TrainConfig(model="efficientnet_lite0", pretrained=True,
                                                        image_size=(64, 64)), progress=False)
    assert len(calls) == 2 and trained.record.result.phases[0].solver.flip_average is True
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["options"]["flip_average"] is True
    predictor = Predictor.load(tmp_path / "run")
    assert predictor.model.flip_average
    files = sorted((data / "left").glob("*.png"))[:3] + sorted((data / "right").glob("*.png"))[:3]
    images = predictor.load_images(files)
    plain = trained.record.build_network()  # rebuilt from the record: averaging, with the run's weights
    from cnnkit.data.preprocess import normalize
    from cnnkit.weights import load_weights

    load_weights(plain, tmp_path / "run" / "model.safetensors").eval()
    plain.flip_average = False
    x = normalize(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0, predictor.preprocessing)
    with torch.no_grad():
        features = (plain.pool(plain.forward_features(x)) + plain.pool(plain.forward_features(x.flip(-1)))) / 2
        expected = plain.classifier(features).softmax(1).numpy()
    assert np.allclose(predictor.predict_proba(files), expected, atol=1e-5)


@pytest.mark.slow  # trains a network (or starts the CLI in subprocesses): end to end
def test_fine_tuning_records_its_augmentation_precision_and_keeps_batch_norm(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from cnnkit.training.fit import train

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    data = write_sided(tmp_path / "data", 8)
    config = TrainConfig(model="efficientnet_lite0", pretrained=True, image_size=(64, 64), strategy="finetune",
                         finetune_epochs=2, precision="32")
    trained = train(data, tmp_path / "run", config, progress=False)
    head, finetune, *fallback = trained.record.result.phases
    assert finetune.augment == "translate=0.05,zoom=0.1"  # no flip: the mirror image is the other class here
    assert finetune.precision == "32" and finetune.epochs_run == 2
    original = lite0(2).backbone.state_dict()
    saved = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert all(torch.equal(saved[f"backbone.{k}"], v) for k, v in original.items() if "running_" in k)
    assert all(t.is_contiguous() for t in saved.values())  # channels_last in training, plain layout on disk
    # The solved head is already perfect on validation, so fine-tuning cannot beat it: the run falls back to the
    # head on the pretrained backbone re-solved on train+val, exactly what a transfer run with the same seed gives.
    assert trained.record.result.phases[0].solver is not None
    assert [p.name for p in fallback] == ["head (fallback)"] and fallback[0].solver.fitted_on == "train+val"
    assert fallback[0].fallback and not any(p.fallback for p in trained.record.result.phases[:-1])
    transfer = train(data, tmp_path / "transfer", config.replace(strategy="transfer"), progress=False)
    expected = load_file(str(transfer.run_dir / "model.safetensors"))
    assert saved.keys() == expected.keys()
    assert all(torch.allclose(saved[k].float(), expected[k].float(), atol=1e-6) for k in saved)
    assert trained.record.result.best_val_acc == transfer.record.result.best_val_acc


@pytest.mark.slow  # trains a network (or starts the CLI in subprocesses): end to end
def test_the_test_split_never_reaches_the_heads_choices(tmp_path, monkeypatch):
    """Swapping the labels of every test image changes nothing in training: not C, not the scores of the grid,
    not the mirror decision, not a single weight."""
    import shutil

    from safetensors.torch import load_file

    from cnnkit.training.fit import train

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    base = tmp_path / "data"
    for split, n in (("train", 10), ("test", 4)):
        write_sided(tmp_path / "src" / split, n)
        shutil.copytree(tmp_path / "src" / split, base / split)
    swapped = tmp_path / "swapped"
    shutil.copytree(base / "train", swapped / "train")
    shutil.copytree(base / "test" / "left", swapped / "test" / "right")
    shutil.copytree(base / "test" / "right", swapped / "test" / "left")
    config = TrainConfig(model="efficientnet_lite0", pretrained=True, image_size=(48, 48))
    runs = [train(data, tmp_path / name, config, progress=False) for data, name in ((base, "a"), (swapped, "b"))]
    first, second = (r.record.result.phases[0].solver for r in runs)
    assert first == second
    weights = [load_file(str(r.run_dir / "model.safetensors")) for r in runs]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.slow
def test_a_run_that_fell_back_trains_further_from_its_fine_tuned_weights(tmp_path, monkeypatch):
    """Resumed with more fine-tuning epochs, a run that fell back to the head continues the fine-tuning (its
    fine-tuned best weights were kept aside), then settles again."""
    from cnnkit.training.fit import resume, train

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    data = write_sided(tmp_path / "data", 8)
    config = TrainConfig(model="efficientnet_lite0", pretrained=True, image_size=(48, 48), strategy="finetune",
                         finetune_epochs=1, precision="32")
    first = train(data, tmp_path / "run", config, progress=False)
    assert first.record.result.phases[-1].name == "head (fallback)"
    assert (tmp_path / "run" / "checkpoints" / "finetuned.safetensors").exists()
    again = resume(tmp_path / "run", changes={"finetune_epochs": 2}, progress=False)
    names = [p.name for p in again.record.result.phases]
    assert names[:2] == ["head", "finetune"] and again.record.result.phases[1].epochs_run == 2
    assert names[2:] in ([], ["head (fallback)"])
    rows = (tmp_path / "run" / "logs" / "metrics.csv").read_text().splitlines()[1:]
    assert sum(1 for r in rows if ",finetune," in r) == 2


@pytest.mark.slow  # trains a network (or starts the CLI in subprocesses): end to end
def test_mirror_averaging_is_never_kept_where_flips_change_the_class_even_if_cross_validation_prefers_it(
        tmp_path, monkeypatch):
    """Digits, or left and right bars: a noisy cross-validation may prefer the averaged features, but a head that
    classifies mirror images worse says flips change the class, and the run keeps the plain features."""
    import cnnkit.models.linear_head as linear_head
    import cnnkit.training.phases as phases
    from cnnkit.training.fit import train

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    real, calls = linear_head.choose_by_cv, []

    def prefer_the_second(*args, **kwargs):
        C, scores = real(*args, **kwargs)
        calls.append(C)
        return C, [{**s, "cv_acc": s["cv_acc"] + (0.5 if len(calls) == 2 else 0.0)} for s in scores]

    monkeypatch.setattr(phases, "choose_by_cv", prefer_the_second)
    trained = train(write_sided(tmp_path / "data", 8), tmp_path / "run",
                    TrainConfig(model="efficientnet_lite0", pretrained=True, image_size=(64, 64)), progress=False)
    assert len(calls) == 2  # the averaged features were cross-validated, and preferred
    assert trained.record.result.phases[0].solver.flip_average is False
    assert not trained.record.model.options.get("flip_average")
