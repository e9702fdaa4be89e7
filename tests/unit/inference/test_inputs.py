"""The API takes images as a notebook holds them: files, PIL images, numpy arrays and torch tensors of any size give
the probabilities the command line gives for the same pixels; bad arrays get a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit import ImageClassifier
from cnnkit.cli import main
from cnnkit.errors import DataError


def _test_images(run: Path) -> list[Path]:
    split = json.loads((run / "split.json").read_text())
    return [Path(split["root"]) / p for p, _ in split["splits"]["test"]]


def test_every_input_kind_gives_the_probabilities_of_the_command_line(trained_run, capsys):
    files = _test_images(trained_run)[:6]
    assert main(["predict", str(trained_run), *map(str, files), "--json", "--backend", "torch"]) == 0
    cli = np.array([[row["probabilities"][c] for c in ("left", "right", "top")]
                    for row in json.loads(capsys.readouterr().out)])
    clf = ImageClassifier.load(trained_run)
    pil = [Image.open(f) for f in files]
    uint8 = np.stack([np.asarray(p.convert("RGB")) for p in pil])
    tensor = torch.from_numpy(uint8).permute(0, 3, 1, 2).float() / 255.0
    for name, images in {"paths": files, "strings": [str(f) for f in files], "PIL": pil, "uint8 batch": uint8,
                         "uint8 list": list(uint8), "float array": uint8 / 255.0, "tensor batch": tensor,
                         "tensor list": list(tensor)}.items():
        assert np.abs(clf.predict_proba(images) - cli).max() < 1e-5, name
    assert clf.predict(pil) == [clf.classes_[k] for k in cli.argmax(1)]


def test_an_image_of_another_size_is_resized_as_its_file_would_be(trained_run, tmp_path):
    clf = ImageClassifier.load(trained_run)
    big = Image.open(_test_images(trained_run)[0]).convert("RGB").resize((64, 48), Image.Resampling.NEAREST)
    big.save(tmp_path / "big.png")
    assert np.abs(clf.predict_proba(big) - clf.predict_proba([tmp_path / "big.png"])).max() < 1e-6
    gray = np.asarray(big.convert("L"))  # (H, W): one grayscale image
    assert clf.predict_proba(gray).shape == (1, 3)
    assert clf.predict_proba(np.stack([gray] * 5)).shape == (5, 3)  # (N, H, W): a batch of them
    as_tensor = torch.from_numpy(np.stack([gray] * 5)).float()[:, None] / 255.0  # (N, 1, H, W)
    assert np.abs(clf.predict_proba(as_tensor) - clf.predict_proba(np.stack([gray] * 5))).max() < 1e-6


def test_transform_and_score(trained_run):
    clf = ImageClassifier.load(trained_run)
    files = _test_images(trained_run)
    vectors = clf.transform(files)
    assert vectors.shape[0] == len(files) and vectors.ndim == 2
    assert np.abs(vectors - clf.transform([Image.open(f) for f in files])).max() < 1e-5
    truth = [f.parent.name for f in files]
    predicted = clf.predict(files)
    assert clf.score(files, truth) == pytest.approx(np.mean([p == t for p, t in zip(predicted, truth)]))
    assert clf.score(files, [clf.classes_.index(t) for t in truth]) == clf.score(files, truth)


@pytest.mark.parametrize("bad, message", [
    (np.full((16, 16, 3), 2.0), "float pixels must lie in"),
    (np.zeros((2, 16, 16, 7), np.uint8), "channels"),
    (np.zeros((2, 2, 2, 16, 16), np.uint8), "expected an image"),
    (np.full((16, 16), 300, np.int32), "0..255"),
    (torch.zeros((5, 16, 16)), "a tensor is \\(C, H, W\\)"),  # a grayscale batch must say its channel
])
def test_a_bad_array_gets_a_clear_error(trained_run, bad, message):
    with pytest.raises(DataError, match=message):
        ImageClassifier.load(trained_run).predict_proba(bad)


def test_the_estimator_offers_similar_and_tsne(trained_run):
    clf = ImageClassifier.load(trained_run)
    query = _test_images(trained_run)[0]
    neighbours = clf.similar(query, k=3)
    assert len(neighbours.paths) == 3 and neighbours.grid_png().startswith(b"\x89PNG")
    tsne = clf.tsne(seed=1)
    assert tsne.coordinates.shape[1] == 2 and len(tsne.coordinates) == len(tsne.labels)
