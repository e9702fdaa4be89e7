"""Training a point detector (``training/points.py``, ``cnnkit points``): the focal loss, photometric augmentation
drawn per step, the record training writes, bad input in one line, and (slow) real trainings that find the objects
of another photo and resume where a killed one stopped."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnkit.augment.layer import Augmentation
from cnnkit.config import PointsConfig
from cnnkit.run import RunFolder
from cnnkit.training.point_data import centre_target, load_patches
from cnnkit.training.points import augment_batch, focal_loss
from tests.unit.dotted_photos import CELL, blob_photo, cli, train_without_steps


def test_photometric_augmentation_is_drawn_from_its_key_alone_and_leaves_torchs_draws_alone():
    layer = Augmentation("brightness=0.2,contrast=0.5,saturation=0.8", (32, 32))
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(5)
    first = augment_batch(layer, x, (0, 7, 0))
    after = torch.rand(1)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(1), after)  # the global generator was restored
    torch.manual_seed(99)
    assert torch.equal(augment_batch(layer, x, (0, 7, 0)), first)  # whatever torch drew before: a resumed step
    assert not torch.allclose(first, x)
    assert not torch.allclose(augment_batch(layer, x, (0, 8, 0)), first)  # another step
    assert not torch.allclose(augment_batch(layer, x, (0, 7, 1)), first)  # the patches of the same step


def test_the_focal_loss_rewards_peaks_on_the_centres_and_ignores_masked_cells():
    target = torch.from_numpy(centre_target((8, 8), [(20.0, 20.0)], CELL))[None, None]
    right = torch.where(target == 1.0, 6.0, -6.0)
    wrong = torch.where(target == 1.0, -6.0, -6.0)
    wrong[0, 0, 6, 6] = 6.0
    assert focal_loss(right, target) < 0.01 < focal_loss(wrong, target)
    mask = torch.zeros_like(target)
    mask[0, 0, 2, 2] = 1.0
    assert focal_loss(wrong, target, mask) > focal_loss(right, target, mask)
    assert focal_loss(wrong, target, torch.zeros_like(target)) == 0.0  # nothing taught, nothing lost


def test_a_point_detector_learns_from_several_patch_folders_and_says_how_many_of_each(tmp_path):
    for folder, counts in (("a", {"seal": 3, "background": 2}), ("b", {"background": 4})):
        for name, n in counts.items():
            (tmp_path / folder / name).mkdir(parents=True)
            for k in range(n):
                Image.new("RGB", (48, 48), (k * 40, 0, 0)).save(tmp_path / folder / name / f"{k}.png")
    patches = load_patches([tmp_path / "a", tmp_path / "b"], CELL)
    assert patches.pixels.shape == (9, 48, 48, 3) and patches.objects.tolist() == [False] * 2 + [True] * 3 + [False] * 4
    photo = tmp_path / "train.png"
    blob_photo(photo)
    config = PointsConfig(crop=64, patches=(str(tmp_path / "a"), str(tmp_path / "b")))
    record = train_without_steps([photo], tmp_path / "run", config)  # the record as training writes it
    assert [(Path(p.folder).name, p.objects, p.backgrounds) for p in record.points.patches] == [("a", 3, 2),
                                                                                               ("b", 0, 4)]
    assert record.__class__.from_dict(record.to_dict()) == record
    old = record.to_dict()  # a record written when one folder was taken
    old["points"]["patches"], old["points"]["settings"]["patches"] = old["points"]["patches"][0], str(tmp_path / "a")
    assert record.__class__.from_dict(old).points.patches[0].folder == record.points.patches[0].folder
    assert PointsConfig(patches="x").patches == ("x",)


@pytest.mark.parametrize("extra, words", [
    (["--crop", "100"], "--crop a multiple of 32"),
    (["--crop", "32"], "Expected --crop >= 64"),
    (["--epochs", "1", "--steps-per-epoch", "3"], "at least 4 training steps"),
    (["--label", "background"], "--label a class name"),
    (["--region", "0:100"], "smaller than a 256-pixel training crop"),
    (["--region", "600:"], "reaches past"),
    (["--patches", "nowhere"], "--patches folder nowhere does not exist"),
    (["--augment", "contrast=0.3,rotate=10"], "photometric transforms only"),
    (["--augment", "hue=0.1"], "--augment: Unknown augmentation 'hue'"),
    (["--augment", "saturation=2"], "--augment: Expected saturation in (0, 1]"),
])
def test_bad_training_input_ends_in_one_line_naming_it(tmp_path, capsys, extra, words):
    photo = tmp_path / "a.png"
    blob_photo(photo)
    code, _, err = cli("points", photo, "--dots", photo.with_suffix(".csv"), "--out", tmp_path / "run", *extra,
                       capsys=capsys)
    assert code == 1 and words in err and len(err.strip().splitlines()) == 1 and "unexpected" not in err, err
    assert not (tmp_path / "run").exists()  # nothing written


# --- learning, and a killed training resumed (slow: real trainings) -------------------------------------------------

@pytest.mark.slow
def test_a_point_detector_trained_on_one_photo_finds_the_objects_of_another(tmp_path, capsys):
    blob_photo(tmp_path / "a.png", seed=0)
    blob_photo(tmp_path / "b.png", seed=1)
    small = ["--epochs", "2", "--steps-per-epoch", "15", "--crop", "128", "--batch-size", "4", "--no-progress"]
    code, out, err = cli("points", tmp_path / "a.png", "--dots", tmp_path / "a.csv", "--out", tmp_path / "run",
                         *small, capsys=capsys)
    assert code == 0, err
    assert "Learned from" in out and "25 dots" in out and "cnnkit scan" in out
    code, out, err = cli("scan", tmp_path / "run", tmp_path / "b.png", "--dots", tmp_path / "b.csv", "--out",
                         tmp_path / "s", capsys=capsys)
    overall = json.loads((tmp_path / "s" / "dots-overall.json").read_text())
    assert code == 0 and overall["dots"] == 25, err
    assert overall["precision"] >= 0.9 and overall["recall"] >= 0.9, overall  # an untrained head finds nothing
    rows = list(csv.DictReader(open(tmp_path / "s" / "detections.csv")))
    assert len(rows) == overall["detected"] and {r["class"] for r in rows} == {"object"}

    # patches cut from the same photo teach too; the record says how many of each
    assert cli("patches", tmp_path / "a.png", "--dots", tmp_path / "a.csv", "--size", "48", "--radius", "16",
               "--out", tmp_path / "patches", capsys=capsys)[0] == 0
    code, out, err = cli("points", tmp_path / "a.png", "--dots", tmp_path / "a.csv", "--out", tmp_path / "run2",
                         "--patches", tmp_path / "patches", "--augment", "contrast,brightness", *small, capsys=capsys)
    assert code == 0, err
    record = RunFolder(tmp_path / "run2").read_record().points
    assert [(p.objects, p.backgrounds) for p in record.patches] == [(25, 25)] and "25 object and 25 background" in out
    assert record.settings.augment == "brightness=0.2,contrast=0.2" and "augmented with brightness=0.2" in out


@pytest.mark.slow
def test_a_detector_that_names_classes_counts_each_class_of_another_photo(tmp_path, capsys):
    blob_photo(tmp_path / "a.png", seed=0, second="cyan")
    blob_photo(tmp_path / "b.png", seed=1, second="cyan")
    code, out, err = cli("points", tmp_path / "a.png", "--dots", tmp_path / "a.csv", "--out", tmp_path / "run",
                         "--by-class", "--epochs", "2", "--steps-per-epoch", "15", "--crop", "128", "--batch-size", "4",
                         "--no-progress", capsys=capsys)
    assert code == 0 and "naming blob, cyan" in out, err
    code, out, err = cli("scan", tmp_path / "run", tmp_path / "b.png", "--dots", tmp_path / "b.csv", "--out",
                         tmp_path / "s", capsys=capsys)
    report = json.loads((tmp_path / "s" / "dots.json").read_text())
    assert code == 0 and {name: r["dots"] for name, r in report.items()} == {"blob": 13, "cyan": 12}, err
    for name, r in report.items():  # an untrained class head names about half of them right
        assert r["precision"] >= 0.9 and r["recall"] >= 0.9, (name, r)


@pytest.mark.slow
def test_a_point_detector_killed_mid_training_resumes_to_the_uninterrupted_result(tmp_path):
    import signal

    from tests.integration.test_faults import cnnkit, epochs_logged, history, same_weights, start, wait_for

    blob_photo(tmp_path / "a.png", seed=0, second="cyan")  # a detector that names classes: both heads resume
    args = ["--epochs", "4", "--steps-per-epoch", "12", "--crop", "64", "--batch-size", "2", "--no-progress", "--by-class",
            "--augment", "brightness=0.3,saturation=0.8"]  # its draws too resume where they were
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    done = cnnkit("points", tmp_path / "a.png", "--dots", tmp_path / "a.csv", "--out", whole, *args)
    assert done.returncode == 0, done.stderr
    process = start("points", tmp_path / "a.png", "--dots", tmp_path / "a.csv", "--out", killed, *args)
    wait_for(lambda: epochs_logged(killed) >= 2, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((killed / "config.json").read_text())["status"] == "training"
    assert 2 <= epochs_logged(killed) < 4  # killed mid-training
    scanned = cnnkit("scan", killed, tmp_path / "a.png", "--out", tmp_path / "s")
    assert scanned.returncode == 0 and "was killed while training" in scanned.stderr  # its last epoch's weights
    refused = cnnkit("train", "--resume", killed, "--epochs", "9")
    assert refused.returncode == 1 and "one-cycle schedule" in refused.stderr
    resumed = cnnkit("train", "--resume", killed)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((killed / "config.json").read_text())["status"] == "finished"
    assert same_weights(whole, killed)
    assert history(whole) == history(killed)  # the same epochs with the same losses, none lost or repeated
