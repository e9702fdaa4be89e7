"""Self-training on a pool of unlabelled images (``unlabelled``): the solved head's confident, class-balanced
pseudo-labels join training, every choice made on the labelled images, kept only when better on validation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.config import TrainConfig
from cnnkit.data.pool import PoolImage, PoolManifest
from cnnkit.errors import ConfigError
from cnnkit.models.linear_head import choose_by_cv
from cnnkit.training.self_training import confidence_threshold, pseudo_labels, self_train
from tests.conftest import write_image_folder

CLASSES = ["a", "b", "c"]


def blobs(per_class: int, rng: np.random.Generator, separation: float = 2.5, dim: int = 20):
    means = np.eye(len(CLASSES), dim) * separation
    x = np.concatenate([rng.normal(means[c], 1.0, (per_class, dim)) for c in range(len(CLASSES))])
    return x, np.repeat(np.arange(len(CLASSES)), per_class)


def manifest(n: int) -> PoolManifest:
    return PoolManifest("/pool", tuple(PoolImage(f"{i}.png", f"{i:064x}") for i in range(n)))


def solved(x, y):
    C, scores = choose_by_cv(x, y, len(CLASSES), seed=0)
    return C, next(s for s in scores if s["C"] == C)["folds"]


@pytest.mark.slow  # trains a network (or starts the CLI in subprocesses): end to end
def test_a_pool_of_the_same_distribution_is_pseudo_labelled_mostly_right_and_kept_when_it_helps():
    rng = np.random.default_rng(0)
    x, y = blobs(10, rng)  # few labels: the plain head is right on 70% of held-out labelled points
    pool, truth = blobs(200, rng)
    trained = self_train(x, y, pool, manifest(len(pool)), CLASSES, *solved(x, y))
    record = trained.record
    assert record.kept and record.kept_rounds >= 1 and record.rounds[0].pseudo_labels == 0
    assert record.rounds[record.kept_rounds].val_accuracy > record.rounds[0].val_accuracy
    assert [r.round for r in record.rounds] == list(range(len(record.rounds)))
    for r in record.rounds[1:]:  # class-balanced
        assert r.pseudo_labels > 0 and max(r.per_class.values()) <= 2 * min(r.per_class.values()) + 10
    given = [(i, CLASSES.index(image.pseudo_label)) for i, image in enumerate(trained.manifest.images)
             if image.pseudo_label]
    assert len(given) == record.pseudo_labels
    assert np.mean([truth[i] == label for i, label in given]) > 0.85
    assert len(trained.y) == len(y) + record.pseudo_labels and np.array_equal(trained.x[:len(x)], x)
    again = self_train(x, y, pool, manifest(len(pool)), CLASSES, *solved(x, y))
    assert again.record == record and np.array_equal(again.y, trained.y)  # deterministic


def test_a_pool_of_noise_falls_back_to_the_plain_head():
    rng = np.random.default_rng(0)
    x, y = blobs(10, rng)
    noise = rng.normal(0, 3, (300, x.shape[1]))
    trained = self_train(x, y, noise, manifest(len(noise)), CLASSES, *solved(x, y))
    assert not trained.record.kept and trained.record.kept_rounds == 0 and trained.record.pseudo_labels == 0
    assert trained.record.reason.startswith("not kept: no better on validation")
    assert np.array_equal(trained.x, x) and np.array_equal(trained.y, y)  # exactly what the head gets without it


def test_the_threshold_is_the_lowest_confidence_held_out_predictions_are_right_at_that_precision():
    probabilities = np.array([[0.99, 0.01], [0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.55, 0.45]])
    labels = np.array([0, 0, 0, 1, 1, 0])  # right, right, right, right, wrong, right (by confidence order)
    assert confidence_threshold(probabilities, labels, 1.0, support=2) == 0.7
    assert confidence_threshold(probabilities, labels, 0.8, support=2) == 0.55
    assert confidence_threshold(probabilities, labels, 1.0, support=5) is None


def test_pseudo_labels_are_balanced_by_the_rarest_class_or_a_top_k_per_class():
    probabilities = np.array([[0.9, 0.1], [0.95, 0.05], [0.7, 0.3], [0.2, 0.8], [0.5, 0.5], [0.85, 0.15]])
    index, labels = pseudo_labels(probabilities, 0.75, 1)  # the rarest class has one above 0.75: one of each
    assert list(index) == [1, 3] and list(labels) == [0, 1]
    assert list(pseudo_labels(probabilities, 0.75, 2)[0]) == [0, 1, 3]  # a top-2: the 0.85 stays out, 0.7 too low
    assert list(pseudo_labels(probabilities, 0.6, 3)[0]) == [0, 1, 3, 5]  # a top-3: 0.95, 0.9, 0.85; the 0.7 out
    assert len(pseudo_labels(probabilities, 0.99, 5)[0]) == 0


@pytest.mark.parametrize("settings, words", [
    ({"model": "tiny_cnn"}, "from scratch (tiny_cnn)"),
    ({"pretrained": True, "strategy": "finetune"}, "strategy='finetune'"),
    ({"pretrained": True, "head_solver": "epochs"}, "head_solver='epochs'"),
    ({"pretrained": True, "mixup": 0.2}, "mixup"),
    ({"pretrained": True, "balance": "oversample"}, "oversample"),
])
def test_unlabelled_is_refused_outside_the_solved_head_in_one_line(settings, words):
    with pytest.raises(ConfigError, match="`unlabelled`") as caught:
        TrainConfig(unlabelled="pool", **settings)
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert TrainConfig(unlabelled="pool").unlabelled == "pool"  # no model named: the pretrained backbone is chosen


def write_noise(folder: Path, n: int, size: int = 32) -> Path:
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3)).astype(np.uint8)).save(folder / f"noise_{i:03d}.png")
    return folder


CONFIG = TrainConfig(model="efficientnet_lite0", pretrained=True, image_size=(32, 32))


@pytest.mark.slow  # trains a network (or starts the CLI in subprocesses): end to end
def test_a_run_keeps_the_pools_manifest_and_rounds_and_never_pseudo_labels_a_labelled_image(tmp_path, monkeypatch,
                                                                                            capsys):
    from cnnkit.cli.train import print_summary
    from cnnkit.run import RunFolder
    from cnnkit.training.fit import train

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    data = write_image_folder(tmp_path / "data", ["left", "right", "top"], per_class=8, size=32, seed=1)
    pool = write_image_folder(tmp_path / "pool" / "nested" / "deeper", ["left", "right", "top"], per_class=15,
                              size=32, seed=2)
    shutil.copy(data / "top" / "top_000.png", pool / "copy_of_a_labelled_image.png")
    trained = train(data, tmp_path / "run", CONFIG.replace(unlabelled=str(tmp_path / "pool")), progress=False)
    record = trained.record.result.phases[0].solver.self_training
    assert record is not None and record.images == 45 and record.left_out == 1 and len(record.rounds) >= 2
    assert record.rounds[1].pseudo_labels > 0 and record.threshold is not None
    assert RunFolder(trained.run_dir).read_record().result.phases[0].solver.self_training == record
    written = PoolManifest.from_dict(json.loads((trained.run_dir / "pool.json").read_text()))
    assert written.left_out == (("nested/deeper/copy_of_a_labelled_image.png", "a copy of a labelled image"),)
    assert all(len(image.sha256) == 64 for image in written.images)
    given = [(Path(image.path).parent.name, image.pseudo_label) for image in written.images if image.pseudo_label]
    assert len(given) >= 10 and np.mean([truth == label for truth, label in given]) > 0.85
    print_summary(trained, None)
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Pool"))
    assert "45 images" in line and ("kept" in line) and "pseudo-labels" in line


@pytest.mark.slow  # trains a network (or starts the CLI in subprocesses): end to end
def test_a_pool_of_noise_leaves_exactly_the_plain_run(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from cnnkit.training.fit import train

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    data = write_image_folder(tmp_path / "data", ["left", "right", "top"], per_class=8, size=32, seed=1)
    noise = write_noise(tmp_path / "noise", 30)
    plain = train(data, tmp_path / "plain", CONFIG, progress=False)
    pooled = train(data, tmp_path / "pooled", CONFIG.replace(unlabelled=str(noise)), progress=False)
    record = pooled.record.result.phases[0].solver.self_training
    assert not record.kept and record.reason.startswith("not kept")
    a, b = (load_file(str(r.run_dir / "model.safetensors")) for r in (plain, pooled))
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert pooled.record.result.best_val_acc == plain.record.result.best_val_acc


@pytest.mark.slow  # two trainings with a pool
def test_the_test_split_never_reaches_the_pools_choices(tmp_path, monkeypatch):
    """Swapping the labels of every test image changes nothing: not the threshold, rounds or pseudo-labels."""
    from cnnkit.training.fit import train

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    base, swapped = tmp_path / "data", tmp_path / "swapped"
    write_image_folder(base / "train", ["left", "right"], per_class=10, size=32, seed=1)
    write_image_folder(base / "test", ["left", "right"], per_class=4, size=32, seed=4)
    shutil.copytree(base / "train", swapped / "train")
    shutil.copytree(base / "test" / "left", swapped / "test" / "right")
    shutil.copytree(base / "test" / "right", swapped / "test" / "left")
    pool = write_image_folder(tmp_path / "pool", ["left", "right"], per_class=10, size=32, seed=2)
    config = CONFIG.replace(unlabelled=str(pool))
    runs = [train(d, tmp_path / name, config, progress=False) for d, name in ((base, "a"), (swapped, "b"))]
    first, second = (r.record.result.phases[0].solver for r in runs)
    assert first == second and first.self_training is not None
    assert (runs[0].run_dir / "pool.json").read_text() == (runs[1].run_dir / "pool.json").read_text()


def test_a_bad_pool_ends_in_one_line_naming_it(tmp_path, capsys):
    from cnnkit.cli import main

    data = write_image_folder(tmp_path / "data", ["left", "right"], per_class=4, size=32)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "notes.txt").write_text("no images here")
    for pool, words in ((tmp_path / "missing", "does not exist"), (tmp_path / "empty", "holds no images"),
                        (data / "left" / "left_000.png", "is not a folder")):
        code = main(["-q", "train", str(data), "--out", str(tmp_path / "run"), "--unlabelled", str(pool)])
        err = capsys.readouterr().err.strip()
        assert code == 1 and len(err.splitlines()) == 1 and "--unlabelled" in err and words in err, err
        assert str(pool) in err
    code = main(["-q", "train", str(data), "--out", str(tmp_path / "run"), "--model", "tiny_cnn", "--unlabelled",
                 str(tmp_path / "empty")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "not supported with a model trained from scratch" in err
    code = main(["-q", "train", str(data), "--auto", "--out", str(tmp_path / "auto"), "--unlabelled",
                 str(tmp_path / "empty")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "holds no images" in err, err  # before any candidate
    assert not (tmp_path / "auto" / "candidates").exists()
