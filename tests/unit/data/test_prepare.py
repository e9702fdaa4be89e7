from pathlib import Path

import numpy as np
import pytest

from cnnkit.data.prepare import load_folder, prepare_training_data
from cnnkit.errors import DataError
from tests.conftest import write_image_folder


def test_auto_size_channels_and_stats_from_train(tmp_path: Path):
    write_image_folder(tmp_path, ["a", "b"], per_class=10, size=20, mode="L")
    data = prepare_training_data(tmp_path, seed=0)
    assert data.preprocessing.image_size == (20, 20) and data.preprocessing.channels == 1
    train = data.splits["train"].images
    assert np.isclose(data.preprocessing.mean[0], train.mean() / 255, atol=1e-6)
    assert sum(len(s) for s in data.splits.values()) == 20


def test_rgb_if_any_image_is_colour_and_model_size_wins(tmp_path: Path):
    write_image_folder(tmp_path, ["a", "b"], per_class=5, mode="L")
    write_image_folder(tmp_path, ["c"], per_class=5, mode="RGB")
    data = prepare_training_data(tmp_path, default_image_size=(32, 32))
    assert data.preprocessing.channels == 3 and data.splits["train"].images.shape[1:] == (32, 32, 3)


def test_corrupt_image_stops_unless_skipped(tmp_path: Path):
    write_image_folder(tmp_path, ["a", "b"], per_class=6)
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(DataError, match=r"broken\.png") as info:
        prepare_training_data(tmp_path)
    assert "`skip_bad`" in str(info.value)
    data = prepare_training_data(tmp_path, skip_bad=True)
    assert data.skipped == ["a/broken.png"]
    assert all("broken" not in p for s in data.manifest.splits.values() for p, _ in s)


def test_load_folder_refuses_mismatched_classes(tmp_path: Path, trained_run):
    from cnnkit.inference import Predictor

    predictor = Predictor.load(trained_run)
    write_image_folder(tmp_path, ["left", "right", "zebra"], per_class=2)
    with pytest.raises(DataError, match=r"Missing from the data: \['top'\].*not known to the model: \['zebra'\]"):
        load_folder(tmp_path, predictor.classes, predictor.preprocessing)


def test_a_skipped_colour_file_does_not_make_a_grayscale_set_colour(tmp_path: Path):
    from PIL import Image

    write_image_folder(tmp_path, ["a", "b"], per_class=6, mode="L")
    Image.fromarray(np.full((16, 16, 3), (200, 10, 10), np.uint8)).save(tmp_path / "a" / "red.png")
    whole = (tmp_path / "a" / "red.png").read_bytes()
    (tmp_path / "a" / "red.png").write_bytes(whole[: len(whole) // 2])  # the header says RGB; the pixels are cut
    data = prepare_training_data(tmp_path, skip_bad=True)
    assert data.skipped == ["a/red.png"] and data.preprocessing.channels == 1
    assert data.splits["train"].images.shape[-1] == 1


def test_unreadable_images_stop_prediction_unless_skipped_and_every_one_is_listed(tmp_path: Path, trained_run,
                                                                                  caplog):
    from cnnkit.inference import Predictor

    images = write_image_folder(tmp_path / "x", ["left"], per_class=3, seed=8) / "left"
    for name in ("bad1.png", "bad2.png"):
        (images / name).write_bytes(b"not an image")
    predictor = Predictor.load(trained_run)
    with pytest.raises(DataError, match="2 unreadable"):
        predictor.predict([images])
    predictions = predictor.predict([images], skip_bad=True)
    assert [Path(p.path).name for p in predictions] == ["left_000.png", "left_001.png", "left_002.png"]
    assert "bad1.png" in caplog.text and "bad2.png" in caplog.text


def _infos(n: int, width: int, height: int):
    from types import SimpleNamespace

    return [SimpleNamespace(width=width, height=height)] * n


@pytest.mark.parametrize("n, width, height, expected", [
    (200, 33, 33, (33, 33)),  # small square maps keep their size
    (200, 8, 8, (16, 16)),  # at least 16
    (200, 500, 375, (48, 64)),  # photos: the aspect kept, 64 on the longer side
    (200, 375, 500, (64, 48)),  # portrait
    (200, 520, 500, (64, 64)),  # within 10% of square
    (1000, 500, 375, (72, 96)),  # enough images for a larger input
    (5000, 500, 375, (96, 128)),
    (5000, 40, 30, (30, 40)),  # never larger than the images
])
def test_the_automatic_size_keeps_the_aspect_and_grows_with_the_data(n, width, height, expected):
    from cnnkit.data.prepare import auto_image_size

    assert auto_image_size(_infos(n, width, height), None) == expected
    assert auto_image_size(_infos(n, width, height), (32, 32)) == (32, 32)  # the model's own size wins


def test_landscape_photos_train_a_scratch_network_at_their_aspect(tmp_path: Path):
    from PIL import Image

    from cnnkit.training.fit import train

    rng = np.random.default_rng(0)
    for label in ("dark", "light"):
        (tmp_path / "d" / label).mkdir(parents=True)
        for i in range(8):
            base = 60 if label == "dark" else 190
            pixels = np.clip(base + rng.normal(0, 20, (150, 200, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "d" / label / f"{i}.jpg")
    trained = train(tmp_path / "d", tmp_path / "run", model="tiny_cnn", epochs=1, progress=False)
    assert trained.record.preprocessing.image_size == (48, 64)
    from cnnkit.inference import Predictor

    assert Predictor.load(trained.run_dir).predict_proba(tmp_path / "d" / "dark").shape == (8, 2)
