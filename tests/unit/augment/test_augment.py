"""The augmentation spec and layer, mixing, test-time augmentation and class balance."""

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from cnnkit.augment.layer import Augmentation
from cnnkit.augment.mixing import mix_batch
from cnnkit.config.augment import TRANSFORMS, AugmentSpec
from cnnkit.augment.tta import tta_views
from cnnkit.errors import ConfigError
from cnnkit.training.balance import class_weights, oversampler


def test_spec_parses_defaults_order_and_canonical_text():
    spec = AugmentSpec.parse("noise, rotate=15 ,flip,vflip")
    assert spec.values == (("flip", "hv"), ("rotate", 15.0), ("noise", 0.05))
    assert str(spec) == "flip=hv,rotate=15,noise=0.05"
    assert AugmentSpec.parse(str(spec)) == spec
    assert not AugmentSpec.parse("none") and not AugmentSpec.parse("")


@pytest.mark.parametrize("text, message", [
    ("spin=3", "Unknown augmentation 'spin'"), ("rotate=500", r"rotate in \(0, 180\]"),
    ("zoom=abc", "Expected a number"), ("flip,flip", "given twice"), ("flip=x", "flip=v"),
])
def test_bad_specs_are_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        AugmentSpec.parse(text)


def images(n=8, c=3, h=20, w=24, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", [n for n in TRANSFORMS if n != "vflip"])
def test_each_transform_keeps_shape_and_range_and_changes_the_images(name):
    layer = Augmentation(name, (20, 24)).train()
    x = images()
    torch.manual_seed(1)
    y = layer(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert y.min() >= 0.0 and y.max() <= 1.0
    assert not torch.allclose(y, x)


def test_saturation_moves_colours_and_leaves_their_order_and_grey_images_alone():
    layer = Augmentation("saturation=0.9", (20, 24)).train()
    x = images()
    torch.manual_seed(0)
    y = layer(x)
    assert torch.equal(y.argmax(1), x.argmax(1))  # the same hue: the strongest channel stays the strongest
    assert torch.allclose(y.amax(1), x.amax(1), atol=1e-5)  # and the same value (HSV)
    assert not torch.allclose(y, x)
    grey = images(c=1)
    assert torch.equal(layer(grey), grey)


def test_inactive_in_eval_mode_random_per_sample_in_train_mode():
    layer = Augmentation("flip,rotate=30,translate=0.1,brightness=0.2", (20, 24))
    x = images(1).repeat(6, 1, 1, 1)  # six copies of one image
    assert torch.equal(layer.eval()(x), x)
    out = layer.train()(x)
    differs = [not torch.allclose(out[0], out[i]) for i in range(1, 6)]
    assert all(differs)  # each copy got its own draw


def test_the_training_module_augments_only_in_training(augmented_run):
    from cnnkit.data.preprocess import Preprocessing
    from cnnkit.inference import Predictor
    from cnnkit.run import RunFolder
    from cnnkit.training.module import ClassifierModule

    predictor = Predictor.load(augmented_run)
    config = RunFolder(augmented_run).read_record().training
    module = ClassifierModule(predictor.model, config, predictor.preprocessing)
    batch = (torch.rand(4, 3, 16, 16) * 255).to(torch.uint8)
    module.eval()
    assert torch.equal(module(batch), module(batch))
    module.train()
    assert not torch.allclose(module(batch), module(batch))
    assert isinstance(predictor.preprocessing, Preprocessing)


def test_mixup_targets_sum_to_one_and_match_the_mixing_weight():
    torch.manual_seed(0)
    x, labels = images(5), torch.arange(5)  # one image per class: the partner is readable from the targets
    for _ in range(10):
        mixed, targets, lam = mix_batch(x, labels, 5, mixup=0.4)
        assert torch.allclose(targets.sum(1), torch.ones(5)) and 0.0 <= lam <= 1.0
        for i in range(5):
            others = [j for j in range(5) if j != i and targets[i, j] > 0]
            j = others[0] if others else i
            assert targets[i, i] == pytest.approx(lam if j != i else 1.0, abs=1e-6)
            assert torch.allclose(mixed[i], lam * x[i] + (1 - lam) * x[j], atol=1e-6)


def test_cutmix_weight_is_the_share_of_pixels_kept():
    torch.manual_seed(3)
    x = torch.arange(1.0, 5.0).view(4, 1, 1, 1).expand(4, 1, 16, 16).contiguous()  # image i is the constant i+1
    labels = torch.arange(4)
    for _ in range(10):
        mixed, targets, lam = mix_batch(x, labels, 4, cutmix=1.0)
        for i in range(4):
            kept = float((mixed[i] == x[i, 0, 0, 0]).float().mean())
            if targets[i, i] < 1:
                assert kept == pytest.approx(lam) and targets[i, i] == pytest.approx(lam)
        assert torch.allclose(targets.sum(1), torch.ones(4))


def test_mixing_off_gives_one_hot_targets():
    x, labels = images(3), torch.tensor([2, 0, 1])
    mixed, targets, lam = mix_batch(x, labels, 3)
    assert mixed is x and lam == 1.0 and targets.argmax(1).tolist() == [2, 0, 1]


def test_tta_views_start_with_the_image_then_flips_then_seeded_draws():
    layer = Augmentation("flip=hv,rotate=20", (20, 24))
    x = images(2)
    views = list(tta_views(x, 6, layer, seed=5))
    assert len(views) == 6 and views[0] is x
    assert torch.equal(views[1], x.flip(-1)) and torch.equal(views[2], x.flip(-2))
    assert torch.equal(views[3], x.flip(-1).flip(-2))
    again = list(tta_views(x, 6, layer, seed=5))
    assert all(torch.equal(a, b) for a, b in zip(views[4:], again[4:]))  # the random views are seeded
    torch.manual_seed(9)
    expected = torch.rand(3)
    torch.manual_seed(9)
    list(tta_views(x, 6, layer, seed=5))
    assert torch.equal(torch.rand(3), expected)  # the caller's random state is untouched


def test_tta_of_one_is_plain_prediction_and_more_views_change_it(augmented_run, pattern_data):
    from cnnkit.inference import Predictor

    predictor = Predictor.load(augmented_run)
    decoded = predictor.load_images(sorted((pattern_data / "left").glob("*.png"))[:6])
    plain = predictor.predict_arrays(decoded)
    assert np.array_equal(predictor.predict_arrays(decoded, tta=1), plain)
    tta = predictor.predict_arrays(decoded, tta=5)
    assert tta.shape == plain.shape and np.allclose(tta.sum(1), 1, atol=1e-5) and not np.allclose(tta, plain)
    assert np.array_equal(tta, predictor.predict_arrays(decoded, tta=5))


def test_tta_needs_a_run_trained_with_augmentation(trained_run, pattern_data):
    from cnnkit.inference import Predictor

    with pytest.raises(ConfigError, match="trained without `augment`"):
        Predictor.load(trained_run).predict([pattern_data / "left"], tta=3)


def test_class_weights_match_scikit_learn():
    labels = np.array([0] * 50 + [1] * 10 + [2] * 5)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    assert class_weights([50, 10, 5]) == pytest.approx(expected)


def test_oversampling_draws_classes_about_equally():
    labels = np.array([0] * 300 + [1] * 30 + [2] * 10)
    drawn = labels[list(oversampler(labels, 3, seed=0))]
    assert len(drawn) == len(labels)
    assert np.bincount(drawn, minlength=3) / len(drawn) == pytest.approx([1 / 3] * 3, abs=0.06)
