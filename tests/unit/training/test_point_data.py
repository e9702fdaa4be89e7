"""What a point detector learns from (``training/point_data.py``): the centre map of the dots, crops and patches
drawn with their maps (turned, flipped, seeded), the classes a detector that names classes is taught, and dots and
patches that do not fit refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.config import PointsConfig
from cnnkit.errors import CnnkitError
from cnnkit.training.point_data import (PatchSet, centre_target, crop_batch, load_dotted, load_patches, patch_batch,
                                        training_data)
from tests.unit.dotted_photos import CELL, COLOURS, blob_photo, cli


def test_the_centre_map_is_one_in_each_dots_cell_and_falls_off_around_it():
    dots = [(20.0, 30.0), (100.5, 7.0)]
    target = centre_target((20, 20), dots, CELL)
    assert {tuple(x) for x in np.argwhere(target == 1.0)} == {(2, 3), (12, 0)}
    assert target.min() == 0.0 and target.max() == 1.0
    assert 0.3 < target[2, 4] < 1.0 and target[2, 10] == 0.0  # a neighbour is near, far cells are background


def test_crops_carry_the_centre_map_of_their_pixels_after_turns_and_flips(tmp_path):
    dots = blob_photo(tmp_path / "a.png")
    photo = load_dotted(tmp_path / "a.png", tmp_path / "a.csv", None, 128, CELL)
    assert len(photo.dots) == len(dots)
    images, targets, classes = crop_batch([photo], 24, 128, CELL, np.random.default_rng(3))
    assert (classes == -1).all()  # no class taught unless it names classes
    assert images.shape == (24, 128, 128, 3) and targets.shape == (24, 16, 16)
    centres = 0
    for image, target in zip(images, targets):
        for i, j in np.argwhere(target == 1.0):
            cell = image[i * CELL:(i + 1) * CELL, j * CELL:(j + 1) * CELL]
            assert (cell[..., 2] < 100).mean() > 0.2  # yellow (little blue) where a disk's centre lies
            centres += 1
        yellow = (image[..., 0] > 200) & (image[..., 2] < 100)
        assert yellow.sum() == 0 or target.max() > 0.3  # a disk in the crop lies near a centre
    assert centres > 10  # most crops are drawn around a dot


def test_the_same_generator_seed_draws_the_same_batch(tmp_path):
    blob_photo(tmp_path / "a.png")
    photo = load_dotted(tmp_path / "a.png", tmp_path / "a.csv", None, 64, CELL)
    first = crop_batch([photo], 4, 64, CELL, np.random.default_rng([0, 7]))
    again = crop_batch([photo], 4, 64, CELL, np.random.default_rng([0, 7]))
    other = crop_batch([photo], 4, 64, CELL, np.random.default_rng([0, 8]))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def test_an_object_patch_teaches_its_centre_only_and_a_background_patch_everything():
    patches = PatchSet(np.zeros((2, 96, 96, 3), np.uint8), np.array([True, False]), (Path("."),), np.zeros(2, int))
    images, targets, masks, classes = patch_batch(patches, 40, CELL, np.random.default_rng(0))
    assert images.shape == (40, 96, 96, 3) and (classes == -1).all()
    for target, mask in zip(targets, masks):
        if mask.all():  # a background patch
            assert target.max() == 0.0
        else:
            assert mask.sum() == 25 and target[mask == 1].max() == 1.0 and (target == 1.0).sum() == 1
            assert mask[target == 1.0].all()  # the centre is among the taught cells, whatever the turn


def test_a_detector_that_names_classes_learns_each_dots_class_around_its_cell(tmp_path):
    blob_photo(tmp_path / "a.png", second="cyan")
    for name, colour in (("cyan", COLOURS[1]), ("background", (90, 90, 90))):
        (tmp_path / "p" / name).mkdir(parents=True)
        Image.new("RGB", (48, 48), colour).save(tmp_path / "p" / name / "x.png")
    config = PointsConfig(crop=128, by_class=True, patches=(str(tmp_path / "p"),))
    photos, patches = training_data(tmp_path / "a.png", tmp_path / "a.csv", config, CELL)
    assert patches.classes.tolist() == [-1, 1]  # background teaches no class, a cyan patch class 1
    images, targets, classes = crop_batch(photos, 24, 128, CELL, np.random.default_rng(3))
    taught = 0
    for image, target, named in zip(images, targets, classes):
        for i, j in np.argwhere(named >= 0):
            block = target[max(0, i - 1):i + 2, max(0, j - 1):j + 2]
            if block.max() < 1.0:  # a class only within a cell of a dot's, which may lie past the crop's edge
                assert min(i, j) == 0 or max(i, j) == target.shape[0] - 1, (i, j)
                continue
            a, b = np.argwhere(target == 1.0)[np.abs(np.argwhere(target == 1.0) - (i, j)).max(1).argmin()]
            blue = image[a * CELL:(a + 1) * CELL, b * CELL:(b + 1) * CELL, 2].mean()
            assert (blue > 120) == (named[i, j] == 1), (blue, named[i, j])  # cyan disks are class 1, yellow 0
            taught += 1
    assert taught > 50 and set(np.unique(classes)) == {-1, 0, 1}
    _, _, _, named = patch_batch(patches, 8, CELL, np.random.default_rng(0))
    assert {int(x.max()) for x in named} == {-1, 1} and all((x >= 0).sum() in (0, 9) for x in named)


def test_dots_and_patches_that_do_not_fit_are_refused(tmp_path, capsys):
    photo = tmp_path / "a.png"
    blob_photo(photo)
    code, _, err = cli("points", photo, "--dots", photo.with_suffix(".csv"), photo.with_suffix(".csv"), "--out",
                       tmp_path / "run", capsys=capsys)
    assert code == 1 and "one CSV per photo" in err
    (tmp_path / "empty.csv").write_text("class_name,row,col\n")
    code, _, err = cli("points", photo, "--dots", tmp_path / "empty.csv", "--out", tmp_path / "run", capsys=capsys)
    assert code == 1 and "has no dots" in err
    (tmp_path / "corner.csv").write_text("class_name,row,col\nblob,400,400\n")
    code, _, err = cli("points", photo, "--dots", tmp_path / "corner.csv", "--region", "0:256,0:256", "--out",
                       tmp_path / "run", capsys=capsys)
    assert code == 1 and "No dot of" in err and "0:256,0:256" in err
    patches = tmp_path / "patches"
    for name, side in (("seal", 96), ("background", 64)):
        (patches / name).mkdir(parents=True)
        Image.new("RGB", (side, side)).save(patches / name / "p.png")
    with pytest.raises(CnnkitError, match="must have one size"):
        load_patches(patches, CELL)
