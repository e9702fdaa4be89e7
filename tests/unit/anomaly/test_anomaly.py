"""Autoencoder runs: trained without labels, their anomaly threshold from validation images alone, their error maps
outlining what is unusual, their codes a latent space like any run's; classifier commands refuse them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.anomaly import score_images
from cnnkit.cli import main
from cnnkit.config import AnomalyConfig, TrainConfig
from cnnkit.errors import RunError
from cnnkit.inference import Predictor
from cnnkit.inference.reconstruction import QUANTILE, anomaly_thresholds, reconstruction_errors
from cnnkit.run import RunFolder
from cnnkit.training.fit import resume, train
from tests.conftest import write_image_folder

FAST = {"model": "conv_autoencoder", "code_size": 8, "model_options": {"filters": (8, 16)}, "batch_size": 8,
        "lr": 0.01, "early_stopping": 0}


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory, pattern_data: Path) -> Path:
    """An autoencoder on the three pattern classes (labels ignored)."""
    out = tmp_path_factory.mktemp("ae") / "run"
    train(pattern_data, out, TrainConfig(epochs=8, **FAST), progress=False)
    return out


@pytest.fixture(scope="module")
def normal_run(tmp_path_factory) -> Path:
    """An autoencoder on a flat folder of 'left' images only (no class folders): the normal ones."""
    root = tmp_path_factory.mktemp("normal")
    write_image_folder(root / "classes", ["left"], per_class=40, mode="L", seed=3)
    shutil.move(root / "classes" / "left", root / "left")
    out = root / "run"
    train(root / "left", out, TrainConfig(epochs=5, **FAST), progress=False)
    return out


def split_images(run: Path, split: str):
    record = RunFolder(run).read_record()
    return RunFolder(run).load_split(split, list(record.classes), record.preprocessing).images


def test_the_autoencoder_reconstructs_its_training_images_better_than_noise_and_the_mean_image(ae_run: Path):
    record = RunFolder(ae_run).read_record()
    assert record.task == "reconstruct" and record.result.best_val_acc is None
    images = split_images(ae_run, "train")
    pixels = images / 255.0
    reconstructed = Predictor.load(ae_run).reconstruct_arrays(images)
    error = ((pixels - reconstructed) ** 2).mean()
    noise = ((pixels - np.random.default_rng(0).random(pixels.shape)) ** 2).mean()
    mean_image = ((pixels - pixels.mean(axis=0)) ** 2).mean()
    assert error < mean_image / 3 and error < noise / 10
    assert record.reconstruction.code_size == 8 and record.reconstruction.pixels == 16 * 16 * 3


def test_the_anomaly_threshold_is_the_quantile_of_validation_errors(ae_run: Path):
    chosen = RunFolder(ae_run).read_record().reconstruction
    predictor = Predictor.load(ae_run)
    thresholds = {}
    for split in ("val", "test"):
        images = split_images(ae_run, split)
        scores, maps = reconstruction_errors(images, predictor.reconstruct_arrays(images), chosen.smoothing)
        thresholds[split] = anomaly_thresholds(scores, maps.reshape(len(maps), -1).max(axis=1), QUANTILE)
    assert thresholds["val"] == pytest.approx((chosen.image_threshold, chosen.pixel_threshold), rel=1e-5)
    assert thresholds["test"][0] != pytest.approx(chosen.image_threshold, rel=1e-5)
    assert chosen.val_images == len(split_images(ae_run, "val"))


def test_the_anomaly_threshold_rises_with_the_validation_images_errors(ae_run: Path):
    from cnnkit.training.autoencoder import reconstruction_record

    run = RunFolder(ae_run)
    record = run.read_record()
    val = run.load_split("val", list(record.classes), record.preprocessing)
    assert reconstruction_record(run, record, val) == record.reconstruction
    val.images = np.random.default_rng(1).integers(0, 256, val.images.shape, dtype=np.uint8)  # noise: badly rebuilt
    assert reconstruction_record(run, record, val).image_threshold > 2 * record.reconstruction.image_threshold


def test_test_images_play_no_part_in_the_anomaly_threshold(tmp_path: Path):
    data = write_image_folder(tmp_path / "data", ["left", "right"], per_class=10, mode="L")
    first = train(data, tmp_path / "first", TrainConfig(epochs=1, **FAST), progress=False).record.reconstruction
    noise = np.random.default_rng(1)
    for rel, _ in RunFolder(tmp_path / "first").read_split().splits["test"]:
        Image.fromarray(noise.integers(0, 256, (16, 16), dtype=np.uint8), mode="L").save(data / rel)
    again = train(data, tmp_path / "again", TrainConfig(epochs=1, **FAST), progress=False).record.reconstruction
    assert again == first


def planted(root: Path, source: Path) -> tuple[Path, tuple[slice, slice]]:
    """A normal image with a bright blob in its dark half."""
    pixels = np.array(Image.open(source).convert("L"))
    blob = (slice(5, 10), slice(10, 15))
    pixels[blob] = 255
    root.mkdir(exist_ok=True)
    Image.fromarray(pixels, mode="L").save(root / "blob.png")
    return root / "blob.png", blob


def test_a_planted_blob_scores_above_the_threshold_and_its_error_map_outlines_it(normal_run: Path, tmp_path: Path):
    split = RunFolder(normal_run).read_split()
    clean = Path(split.root) / split.splits["test"][0][0]
    blob_path, blob = planted(tmp_path / "images", clean)
    result = score_images(normal_run, [blob_path, clean], tmp_path / "out")
    by_name = {Path(r.path).name: r for r in result.rows}
    assert by_name["blob.png"].anomalous and by_name["blob.png"].score > 2 * by_name[clean.name].score
    predictor = Predictor.load(normal_run)
    image = predictor.load_images([blob_path])
    chosen = RunFolder(normal_run).read_record().reconstruction
    _, maps = reconstruction_errors(image, predictor.reconstruct_arrays(image), chosen.smoothing)
    unusual = maps[0] > chosen.pixel_threshold
    inside = np.zeros_like(unusual)
    inside[blob] = True
    assert unusual[blob].mean() > 0.8 and unusual[~inside].mean() < 0.1  # the blob, not the rest, is outlined
    row = by_name["blob.png"]
    assert all((tmp_path / "out" / f).exists() for f in row.files.values())
    written = json.loads((tmp_path / "out" / "anomaly.json").read_text())
    assert written["images"] == 2 and written["compression"] == pytest.approx(256 / 8)
    assert "blob.png" in (tmp_path / "out" / "anomaly.html").read_text()


def test_other_classes_score_as_anomalies_against_the_normal_one(normal_run: Path, tmp_path: Path):
    data = write_image_folder(tmp_path / "mixed", ["left", "right", "top"], per_class=8, mode="L", seed=9)
    result = score_images(normal_run, [data], config=AnomalyConfig(normal="left", maps=False))
    assert result.summary["roc_auc"] > 0.95 and result.folder is None
    flagged = {c: np.mean([r.anomalous for r in result.rows if r.label == c]) for c in ("left", "right", "top")}
    assert flagged["right"] == flagged["top"] == 1.0 and flagged["left"] < 0.5


def test_features_and_similar_work_on_an_autoencoder_run(ae_run: Path, pattern_data: Path):
    from cnnkit.config import SearchConfig
    from cnnkit.latent.features import folder_features
    from cnnkit.latent.similar import similar

    arrays = folder_features(Predictor.load(ae_run), pattern_data)
    assert arrays["features"].shape == (90, 8)
    query = pattern_data / "top" / "top_000.png"
    found = similar(ae_run, query, SearchConfig(k=3))
    assert len(found.paths) == 3


@pytest.mark.parametrize("command", [["predict", "{run}", "{image}"], ["evaluate", "{run}"], ["export", "{run}"],
                                     ["evaluate", "{run}", "--choose-threshold"],
                                     ["inspect", "{run}", "{image}", "--out", "{run}-inspect"]])
def test_classifier_commands_refuse_an_autoencoder_run_in_one_line(ae_run: Path, pattern_data: Path, command,
                                                                   capsys):
    image = pattern_data / "left" / "left_000.png"
    code = main([part.format(run=ae_run, image=image) for part in command])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "autoencoder" in err and "cnnkit anomaly" in err


def test_anomaly_refuses_a_classifier_run_and_autoencoder_settings_on_a_classifier(trained_run: Path, tmp_path: Path,
                                                                                    capsys):
    with pytest.raises(RunError, match="is a classifier .* an anomaly score does not apply"):
        score_images(trained_run)
    assert main(["train", str(tmp_path), "--model", "tiny_cnn", "--code-size", "4", "--out", str(tmp_path / "x")]) == 1
    assert "--code-size sets an autoencoder's code" in capsys.readouterr().err


class StopAfter:
    """A Lightning callback that stops training, as a kill would, once ``epochs`` epochs are checkpointed."""

    def __new__(cls, epochs: int):
        import lightning as L

        from cnnkit.errors import Interrupted

        class Stop(L.Callback):
            def on_train_epoch_end(self, trainer, pl_module) -> None:
                if trainer.current_epoch + 1 == epochs:
                    raise Interrupted("Stopped by the test", 15)

        return Stop()


def test_an_autoencoder_run_stopped_mid_training_resumes_to_the_uninterrupted_result(two_classes: Path,
                                                                                     tmp_path: Path):
    from safetensors.torch import load_file

    from cnnkit.errors import Interrupted

    whole = train(two_classes, tmp_path / "whole", TrainConfig(epochs=3, **FAST), progress=False)
    with pytest.raises(Interrupted):
        train(two_classes, tmp_path / "stopped", TrainConfig(epochs=3, **FAST), progress=False,
              callbacks=[StopAfter(2)])
    assert RunFolder(tmp_path / "stopped").read_record().status == "interrupted"
    resumed = resume(tmp_path / "stopped", progress=False)
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "stopped" / "model.safetensors")
    assert all((a[k] - b[k]).abs().max() < 1e-5 for k in a)
    assert resumed.record.reconstruction == whole.record.reconstruction


def test_evaluate_knn_scores_an_autoencoder_s_codes_like_any_run_s(ae_run: Path, normal_run: Path, capsys):
    from sklearn.neighbors import KNeighborsClassifier

    assert main(["evaluate", str(ae_run), "--knn", "3"]) == 0
    out = capsys.readouterr().out
    assert "latent k-NN of the autoencoder's codes (k=3)" in out
    metrics = json.loads((ae_run / "eval-knn" / "metrics.json").read_text())
    predictor = Predictor.load(ae_run)
    manifest = RunFolder(ae_run).read_split()
    root = RunFolder(ae_run).data_root(manifest)
    codes = {s: predictor.embed_arrays(predictor.load_images([root / p for p, _ in manifest.splits[s]]))
             for s in ("train", "test")}
    labels = {s: [predictor.classes.index(c) for _, c in manifest.splits[s]] for s in ("train", "test")}
    reference = KNeighborsClassifier(3).fit(codes["train"], labels["train"]).score(codes["test"], labels["test"])
    assert metrics["knn"]["accuracy"] == pytest.approx(reference, abs=1 / len(labels["test"]) + 1e-9)
    assert main(["evaluate", str(normal_run), "--knn", "3"]) == 1
    assert "nothing to vote for" in capsys.readouterr().err


def test_anomaly_says_which_images_the_run_trained_on_and_leaves_them_out_of_the_roc_auc(ae_run: Path,
                                                                                      pattern_data: Path, caplog):
    result = score_images(ae_run, [pattern_data], config=AnomalyConfig(normal="left", maps=False))
    manifest = RunFolder(ae_run).read_split()
    own = sum(len(manifest.splits[s]) for s in ("train", "val"))
    assert result.summary["seen_in_training"] == own and "own training or validation images" in caplog.text
    unseen = [r for r in result.rows if not any(r.path.endswith(p) for s in ("train", "val")
                                                 for p, _ in manifest.splits[s])]
    from sklearn.metrics import roc_auc_score

    expected = roc_auc_score([r.label != "left" for r in unseen], [r.score for r in unseen])
    assert result.summary["roc_auc"] == pytest.approx(expected)


def test_an_autoencoder_refuses_pretrained_weights_in_one_line(two_classes: Path, tmp_path: Path, capsys):
    code = main(["train", str(two_classes), "--model", "conv_autoencoder", "--pretrained", "--out",
                 str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "--pretrained" in err and not (tmp_path / "x").exists()
