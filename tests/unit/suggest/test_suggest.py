"""``suggest`` on a tiny trained run: what the run is unsure of comes first, near-copies are not picked twice, the
picks are shared among predicted classes, the run's own images and unreadable files are dealt with, and the
outputs are written as a whole."""

from __future__ import annotations

import csv
import logging
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.errors import ConfigError, DataError, OutputError
from cnnkit.suggest import suggest
from tests.conftest import pattern_image


def blend(rng: np.random.Generator, weight: float) -> Image.Image:
    """``weight`` of a left-half image, the rest of a right-half one: at 0.5 the run cannot tell."""
    left = np.asarray(pattern_image(0, rng), np.float64)
    right = np.asarray(pattern_image(1, rng), np.float64)
    return Image.fromarray((weight * left + (1 - weight) * right).astype(np.uint8))


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    """Four clear images of each class, in sub-folders, and three blends of left and right at the top."""
    rng = np.random.default_rng(11)
    root = tmp_path / "pool"
    for label, name in enumerate(["left", "right", "top"]):
        (root / "batch" / name).mkdir(parents=True)
        for i in range(4):
            pattern_image(label, rng).save(root / "batch" / name / f"{name}{i}.png")
    for weight in (0.45, 0.5, 0.55):
        blend(rng, weight).save(root / f"blend{weight}.png")
    return root


def test_margin_ranks_what_the_run_is_unsure_of_above_what_it_is_sure_of(trained_run, pool):
    result = suggest(trained_run, pool, n=15, query_strategy="margin", class_balance=False)
    ranks = {row.path: row.rank for row in result.rows}
    assert ranks["blend0.5.png"] < min(rank for path, rank in ranks.items() if path.startswith("batch/"))
    assert [row.margin for row in result.rows] == sorted(row.margin for row in result.rows)
    first = result.rows[0]
    assert first.distance is None and " or " in first.reason  # the two classes it hesitates between
    assert set(ranks) == {p.relative_to(pool).as_posix() for p in pool.rglob("*.png")}  # relative to the pool


def test_entropy_ranks_the_most_spread_first(trained_run, pool):
    result = suggest(trained_run, pool, n=15, query_strategy="entropy", class_balance=False)
    assert [row.entropy for row in result.rows] == sorted((row.entropy for row in result.rows), reverse=True)
    assert result.rows[0].path.startswith("blend")


def test_kcenter_never_picks_two_copies_of_one_image(trained_run, tmp_path):
    """Five images, each with four near-copies (a pixel changed: other bytes, other pixels, the same picture):
    five picks take one of each."""
    rng = np.random.default_rng(3)
    root = tmp_path / "copies"
    root.mkdir()
    for k in range(5):
        pixels = np.asarray(pattern_image(k % 3, rng)).copy()
        for copy in range(5):
            pixels[copy, 0] = (pixels[copy, 0].astype(int) + 1) % 256
            Image.fromarray(pixels).save(root / f"image{k}_copy{copy}.png")
    Image.open(root / "image0_copy0.png").save(root / "exact_copy.png")  # the same pixels: left out at once
    for strategy in ("kcenter", "hybrid"):
        result = suggest(trained_run, root, n=5, query_strategy=strategy, class_balance=False)
        assert result.copies == 1 and result.ranked == 25
        assert sorted(row.path.split("_")[0] for row in result.rows) == [f"image{k}" for k in range(5)], strategy
        assert all(row.distance is not None and row.distance > 0 for row in result.rows)
    margin = suggest(trained_run, root, n=5, query_strategy="margin", class_balance=False)
    assert len({row.path.split("_")[0] for row in margin.rows}) < 5  # what the latent space is for


def test_one_predicted_class_does_not_take_every_pick(trained_run, tmp_path):
    rng = np.random.default_rng(5)
    root = tmp_path / "skewed"
    root.mkdir()
    for i in range(12):  # many left-ish images, each a little unsure
        blend(rng, 0.7 + 0.02 * i).save(root / f"leftish{i:02d}.png")
    for label in (1, 2):
        for i in range(3):
            pattern_image(label, rng).save(root / f"clear{label}_{i}.png")
    for strategy in ("margin", "hybrid", "kcenter"):
        shares = Counter(row.predicted for row in suggest(trained_run, root, n=6, query_strategy=strategy).rows)
        assert len(shares) == 3 and max(shares.values()) == 2, (strategy, shares)
    unbalanced = suggest(trained_run, root, n=6, query_strategy="margin", class_balance=False)
    assert Counter(row.predicted for row in unbalanced.rows).most_common(1)[0][1] > 2


def test_the_runs_own_images_are_never_suggested(trained_run, pattern_data, pool):
    shutil.copy(pattern_data / "left" / "left_000.png", pool / "renamed_training_image.png")
    Image.open(pattern_data / "top" / "top_001.png").save(pool / "reencoded.bmp")  # other bytes, same pixels
    result = suggest(trained_run, pool, n=50, query_strategy="margin")
    paths = {row.path for row in result.rows}
    assert result.labelled == 2 and "renamed_training_image.png" not in paths and "reencoded.bmp" not in paths
    assert result.files == 17 and result.ranked == 15


def test_unreadable_files_are_named_or_skipped_with_a_warning(trained_run, pool, caplog):
    (pool / "broken.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken.png"):
        suggest(trained_run, pool, n=3, query_strategy="margin")
    with caplog.at_level(logging.WARNING, logger="cnnkit"):
        result = suggest(trained_run, pool, n=3, query_strategy="margin", skip_bad=True)
    assert "broken.png" in caplog.text and len(result.unreadable) == 1 and len(result.rows) == 3


def test_bad_settings_and_a_pool_that_is_no_folder_are_refused_by_name(trained_run, pool, tmp_path):
    with pytest.raises(ConfigError, match="`n` >= 1"):
        suggest(trained_run, pool, n=0)
    with pytest.raises(ConfigError, match="'query_strategy' parameter of SuggestConfig must be one of"):
        suggest(trained_run, pool, query_strategy="random")
    with pytest.raises(DataError, match="is not a folder"):
        suggest(trained_run, pool / "blend0.5.png")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not a suggestion folder"):
        suggest(trained_run, pool, tmp_path / "mine", n=2)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_outputs_are_a_csv_a_page_and_thumbnails_replaced_as_a_whole(trained_run, pool, tmp_path):
    out = tmp_path / "to-label"
    suggest(trained_run, pool, out, n=4)
    (out / "stale.txt").write_text("from the first suggestion")
    result = suggest(trained_run, pool, out, n=3, query_strategy="margin")
    assert result.out == out and not (out / "stale.txt").exists()
    with open(out / "to_label.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["rank"] for r in rows] == ["1", "2", "3"] and rows[0]["path"] == result.rows[0].path
    assert set(rows[0]) == {"rank", "path", "predicted", "probability", "margin", "entropy", "distance", "reason"}
    page = (out / "index.html").read_text()
    assert page.count("<img ") == 3 and "thumbs/0001.jpg" in page and result.rows[0].reason in page
    with Image.open(out / "thumbs" / "0001.jpg") as thumb:
        assert thumb.format == "JPEG"


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "f7c7ce8"


def test_a_multi_label_run_is_unsure_near_a_class_threshold(tmp_path):
    import json

    run = Path(shutil.copytree(FIXTURES / "tiny_binary", tmp_path / "labels"))
    record = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**record, "multi_label": True}))
    result = suggest(run, FIXTURES / "transfer_test_efficientnet" / "dataset", n=3, query_strategy="margin")
    assert result.rows and all("against its threshold" in row.reason for row in result.rows)
    assert [row.margin for row in result.rows] == sorted(row.margin for row in result.rows)


def test_a_baseline_run_has_no_latent_space_to_spread_picks_in(pool, tmp_path):
    run = Path(shutil.copytree(FIXTURES / "baseline_linear", tmp_path / "baseline"))  # suggest writes into the run
    with pytest.raises(ConfigError, match="latent space.*use margin or entropy"):
        suggest(run, pool, n=3)
    assert len(suggest(run, pool, n=3, query_strategy="entropy").rows) == 3


def test_suggestions_written_inside_the_pool_are_not_read_back_as_pool_images(trained_run, pool):
    first = suggest(trained_run, pool, pool / "to-label", n=4)
    assert len(list((pool / "to-label" / "thumbs").glob("*.jpg"))) == 4
    again = suggest(trained_run, pool, pool / "to-label", n=4)
    assert again.files == first.files == 15 and not any(row.path.startswith("to-label") for row in again.rows)


def test_a_run_whose_training_images_are_gone_still_suggests_and_says_what_it_lacks(trained_run, pool, tmp_path,
                                                                                   caplog):
    import json

    run = Path(shutil.copytree(trained_run, tmp_path / "moved", ignore=shutil.ignore_patterns("index")))
    split = json.loads((run / "split.json").read_text())
    (run / "split.json").write_text(json.dumps({**split, "root": str(tmp_path / "gone")}))
    with caplog.at_level(logging.WARNING, logger="cnnkit"):
        result = suggest(run, pool, n=3, query_strategy="kcenter")
    assert len(result.rows) == 3 and "measured within the pool alone" in caplog.text
