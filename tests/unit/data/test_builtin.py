from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.data.builtin import export_dataset, list_datasets
from cnnkit.data.builtin.wafers import CLASSES, FAIL, OFF, PASS, class_counts, generate_wafer
from cnnkit.errors import ConfigError, DataError


def test_listing():
    assert {"digits", "wafers"} <= set(list_datasets())
    with pytest.raises(ConfigError, match="Available"):
        export_dataset("imagenet", "/tmp/never")


def test_digits_export_is_the_real_sklearn_set(tmp_path: Path):
    from sklearn.datasets import load_digits

    counts = export_dataset("digits", tmp_path / "d")
    assert sum(counts.values()) == 1797 and len(counts) == 10
    first = np.asarray(Image.open(tmp_path / "d" / "0" / "digit_0000.png"))
    assert first.shape == (8, 8)
    assert np.allclose(first / 255 * 16, load_digits().images[0], atol=0.05)


def test_export_refuses_a_non_empty_folder(tmp_path: Path):
    (tmp_path / "keep.txt").write_text("user file")
    with pytest.raises(DataError, match="not empty"):
        export_dataset("wafers", tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "user file"


def test_wafers_seeded_imbalanced_and_balanced(tmp_path: Path):
    counts = export_dataset("wafers", tmp_path / "a", seed=1, size=2)
    export_dataset("wafers", tmp_path / "b", seed=1, size=2)
    assert set(counts) == set(CLASSES) and counts["none"] > counts["Edge-Ring"] > counts["Near-full"] == 2
    for f in (tmp_path / "a" / "Scratch").iterdir():
        assert f.read_bytes() == (tmp_path / "b" / "Scratch" / f.name).read_bytes()
    export_dataset("wafers", tmp_path / "c", seed=2, size=2)
    assert (tmp_path / "a" / "Loc" / "wafer_0000.png").read_bytes() != (
        tmp_path / "c" / "Loc" / "wafer_0000.png").read_bytes()
    assert set(class_counts(balanced=True, per_class=7).values()) == {7}


def test_wafer_maps_are_round_and_three_valued():
    rng = np.random.default_rng(0)
    for kind in CLASSES:
        wafer = generate_wafer(kind, rng, grid=32)
        assert set(np.unique(wafer)) <= {OFF, PASS, FAIL}
        assert wafer[0, 0] == OFF and wafer[16, 16] != OFF


def _features(wafer: np.ndarray) -> np.ndarray:
    """Failure density in five rings plus four quadrants: enough to tell most classes apart."""
    n = wafer.shape[0]
    yy, xx = np.mgrid[0:n, 0:n] - (n - 1) / 2
    r = np.hypot(yy, xx) / (n / 2)
    inside, fail = wafer != OFF, wafer == FAIL
    rings = [fail[inside & (r >= lo) & (r < lo + 0.2)].mean() for lo in np.arange(0, 1.0, 0.2)]
    quads = [fail[inside & (yy * sy > 0) & (xx * sx > 0)].mean() for sy in (1, -1) for sx in (1, -1)]
    return np.array(rings + sorted(quads) + [fail[inside].mean()])


def test_wafer_classes_are_distinguishable():
    """A classical classifier on simple spatial statistics beats chance (1/9) by far: the patterns are real."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = np.array([_features(generate_wafer(k, rng, grid=32)) for k in CLASSES for _ in range(40)])
    y = np.repeat(np.arange(len(CLASSES)), 40)
    clf = RandomForestClassifier(n_estimators=100, random_state=0).fit(X[::2], y[::2])
    assert clf.score(X[1::2], y[1::2]) > 0.7
