"""The point detector (``cnnkit points``): targets and batches where the dots are, its record, scanning with it,
bad input in one line, and every command that needs a classifier refusing its run in one line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.cli import main
from cnnkit.config import PointsConfig
from cnnkit.errors import CnnkitError
from cnnkit.run import RunFolder
from cnnkit.training.point_data import PatchSet, centre_target, crop_batch, load_dotted, patch_batch
from cnnkit.training.points import focal_loss

CELL = 8


COLOURS = {0: (230, 220, 60), 1: (60, 200, 230)}  # yellow, and cyan (its blue high)


def blob_photo(path: Path, seed: int = 0, count: int = 25, size: int = 512, label: str = "blob",
               second: str | None = None) -> list:
    """A noisy grey photo with ``count`` yellow disks (radius 6) at least 20 px apart; their dots file beside it.
    With ``second``, every other disk is cyan, of that class."""
    rng = np.random.default_rng(seed)
    pixels = rng.normal(90, 20, (size, size, 3)).clip(0, 255)
    dots: list[tuple[float, float]] = []
    while len(dots) < count:
        r, c = rng.uniform(12, size - 12, 2)
        if all(np.hypot(r - a, c - b) > 20 for a, b in dots):
            dots.append((float(r), float(c)))
    ii, jj = np.mgrid[0:size, 0:size]
    kinds = [k % 2 if second else 0 for k in range(count)]
    for (r, c), kind in zip(dots, kinds):
        pixels[np.hypot(ii - r, jj - c) < 6] = COLOURS[kind]
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class_name", "row", "col"])
        writer.writerows([(label, second)[kind], f"{r:.2f}", f"{c:.2f}"] for (r, c), kind in zip(dots, kinds))
    return dots


def cli(*args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# --- targets, batches and the loss --------------------------------------------------------------------------------

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


def test_a_points_config_written_before_augment_reads_without_it():
    data = PointsConfig(augment="saturation=0.3").to_dict()
    assert PointsConfig.from_dict(data).augment == "saturation=0.3"
    del data["augment"]
    assert PointsConfig.from_dict(data).augment is None


def test_photometric_augmentation_is_drawn_from_its_key_alone_and_leaves_torchs_draws_alone():
    from cnnkit.augment.layer import Augmentation
    from cnnkit.training.points import augment_batch

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


# --- a run, made without training (random weights): its record, scanning, refusals ----------------------------------

def fake_run(out: Path, threshold: float = 0.3, by_class: bool = False) -> Path:
    """A point detector's run folder, untrained: for what does not depend on learning (``by_class``: one that names
    the classes blob and cyan)."""
    from cnnkit.models.points import PointNet
    from cnnkit.training.point_data import load_dotted
    from cnnkit.training.points import _first_record
    from cnnkit.weights import save_weights

    photo = out.parent / "train.png"
    blob_photo(photo, seed=5, second="cyan" if by_class else None)
    config = PointsConfig(threshold=threshold, crop=64, label="animal", by_class=by_class)
    loaded = [load_dotted(photo, photo.with_suffix(".csv"), None, 64, CELL)]
    record = _first_record(config, loaded, None).replace(status="finished")
    torch.manual_seed(0)
    out.mkdir(parents=True)
    net = PointNet(pretrained=True, classes=2 if by_class else 0)
    save_weights(net, RunFolder(out).weights_path)  # ImageNet features, a random head
    RunFolder(out).write_record(record)
    return out


@pytest.fixture(scope="module")
def random_run(tmp_path_factory) -> Path:
    return fake_run(tmp_path_factory.mktemp("points") / "run")


def test_the_record_of_a_point_detector_reads_back_the_same(random_run):
    record = RunFolder(random_run).read_record()
    assert record.finds_points and record.task == "points" and record.classes == ("animal",)
    assert record.points.settings == PointsConfig(threshold=0.3, crop=64, label="animal")
    assert record.points.photos[0].objects == 25 and record.points.cell == 8
    assert RunFolder(random_run).read_record() == record.__class__.from_dict(record.to_dict())


def test_a_scan_with_a_point_detector_uses_its_map_and_its_threshold(random_run, tmp_path, capsys):
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1)
    code, out, err = cli("scan", random_run, photo, "--dots", photo.with_suffix(".csv"), "--out", tmp_path / "s",
                         "--precision", "32", capsys=capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "s" / "scan.json").read_text())
    assert summary["method"] == "points" and summary["stride"] == 8 and summary["grid"] == [64, 64]
    assert summary["threshold"] == 0.3 and summary["min_distance"] == 16.0
    assert "centre map, a cell every 8 px" in out and "all objects" in out
    assert "blob " not in out  # one class-agnostic detector: no per-class rows without `verify`
    heat = np.load(tmp_path / "s" / "heatmap_animal.npy")
    assert heat.shape == (64, 64) and 0.0 < heat.min() <= heat.max() < 1.0
    code, _, err = cli("scan", random_run, photo, "--out", tmp_path / "s2", "--threshold", "0.05", capsys=capsys)
    assert code == 0 and json.loads((tmp_path / "s2" / "scan.json").read_text())["threshold"] == 0.05


def test_a_point_detectors_threshold_is_chosen_against_every_dot_and_stored(tmp_path, capsys):
    run = fake_run(tmp_path / "run")
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1, label="pup")  # the dots' class is not the detector's label
    code, _, err = cli("scan", run, photo, "--dots", photo.with_suffix(".csv"), "--region", "0:256", "--out",
                       tmp_path / "s", "--choose-thresholds", capsys=capsys)
    assert code == 0, err
    stored = RunFolder(run).read_record().scan_thresholds
    assert set(stored["per_class"]) == {"animal"} and "in region 0:256" in stored["source"]
    chosen = stored["per_class"]["animal"]
    assert chosen != 0.5  # 0.5 is what a class without dots keeps: the dots of class pup were used
    code, _, _ = cli("scan", run, photo, "--out", tmp_path / "s2", capsys=capsys)
    assert code == 0 and json.loads((tmp_path / "s2" / "scan.json").read_text())["threshold"] == {"animal": chosen}


def test_the_centre_map_in_tiles_is_close_to_one_pass(random_run):
    from cnnkit.scan.points import centre_map, load_point_detector

    net, record = load_point_detector(random_run)
    photo = np.random.default_rng(0).integers(0, 255, (2200, 200, 3), dtype=np.uint8)
    tiled = centre_map(net, record, photo)
    with torch.no_grad():
        x = (torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255.0 - 0.5) / 0.5
        whole = torch.sigmoid(net(x))[0, 0].numpy()
    assert tiled.shape == (275, 25)
    assert np.abs(tiled - whole).max() < 0.02
    assert np.abs(tiled[:240] - whole[:240]).max() < 1e-4  # the first tile saw all it needed below


def test_a_point_detector_with_a_verifier_reports_per_class(random_run, tmp_path, capsys, monkeypatch):
    from tests.unit.scan.test_verify import FixedVerifier

    monkeypatch.setattr("cnnkit.scan.photo.load_verifier", lambda run: FixedVerifier("pup", side=32))
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1, label="pup")
    code, out, err = cli("scan", random_run, photo, "--dots", photo.with_suffix(".csv"), "--out", tmp_path / "s",
                         "--threshold", "0.05", "--verify", "anything", capsys=capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "s" / "dots.json").read_text())
    assert set(report) == {"pup"} and report["pup"]["dots"] == 25 and "pup -> pup" in out


def test_a_verifier_renames_what_a_detector_that_names_classes_found(tmp_path, capsys, monkeypatch):
    from tests.unit.scan.test_verify import FixedVerifier

    run = fake_run(tmp_path / "run", by_class=True)
    monkeypatch.setattr("cnnkit.scan.photo.load_verifier", lambda run: FixedVerifier("pup", side=32))
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1, second="cyan")
    code, out, err = cli("scan", run, photo, "--out", tmp_path / "s", "--threshold", "0.05", "--verify", "anything",
                         capsys=capsys)
    counts = json.loads((tmp_path / "s" / "counts.json").read_text())
    assert code == 0 and counts["pup"] > 0 and "blob" not in counts and "cyan" not in counts, (err, counts)
    code, out, err = cli("scan", run, photo, "--out", tmp_path / "k", "--threshold", "0.05", "--verify", "anything",
                         "--verify-keeps-class", capsys=capsys)
    counts = json.loads((tmp_path / "k" / "counts.json").read_text())
    assert code == 0 and set(counts) == {"blob", "cyan"}, (err, counts)  # the detector's own names kept


def test_a_verifier_that_keeps_the_class_leaves_a_point_detector_class_agnostic(random_run, tmp_path, capsys,
                                                                              monkeypatch):
    from tests.unit.scan.test_verify import FixedVerifier

    monkeypatch.setattr("cnnkit.scan.photo.load_verifier", lambda run: FixedVerifier("pup", side=32))
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1, label="pup")
    code, out, err = cli("scan", random_run, photo, "--dots", photo.with_suffix(".csv"), "--out", tmp_path / "s",
                         "--threshold", "0.05", "--verify", "anything", "--verify-keeps-class", capsys=capsys)
    assert code == 0, err
    assert not (tmp_path / "s" / "dots.json").exists() and "all objects" in out  # no per-class rows of "animal"
    assert json.loads((tmp_path / "s" / "counts.json").read_text()).keys() == {"animal"}


def test_a_point_detectors_detections_in_a_region_stay_in_the_photos_pixels(random_run, tmp_path, capsys):
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1)
    for name, region in (("whole", []), ("part", ["--region", "256:,128:"])):
        code, _, err = cli("scan", random_run, photo, "--out", tmp_path / name, "--threshold", "0.05", "--precision",
                           "32", *region, capsys=capsys)
        assert code == 0, err
    rows = {name: [(float(r["row"]), float(r["col"]), float(r["score"]))
                   for r in csv.DictReader(open(tmp_path / name / "detections.csv"))] for name in ("whole", "part")}
    inner = lambda rows: {(r, c) for r, c, _ in rows if r > 256 + 160 and c > 128 + 160}  # noqa: E731
    assert rows["part"] and all(r >= 256 and c >= 128 for r, c, _ in rows["part"])
    assert inner(rows["part"]) == inner(rows["whole"])  # away from the region's edge, the same peaks


@pytest.mark.parametrize("args, words", [
    (["--stride", "16"], "--stride 16 does not apply"),
    (["--method", "sliding"], "--method 'sliding' does not apply"),
])
def test_a_scan_refuses_settings_of_a_patch_classifier(random_run, tmp_path, capsys, args, words):
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1, count=3, size=64)
    code, _, err = cli("scan", random_run, photo, "--out", tmp_path / "s", *args, capsys=capsys)
    assert code == 1 and words in err and len(err.strip().splitlines()) == 1


COMMANDS = [["predict", "{run}", "{image}"], ["evaluate", "{run}"], ["export", "{run}"], ["features", "{run}", "{data}"],
            ["similar", "{run}", "{image}"], ["tsne", "{run}"], ["anomaly", "{run}", "{image}"],
            ["inspect", "{run}", "{image}", "--out", "{tmp}/i"], ["summary", "{run}"],
            ["scan", "{other}", "{image}", "--out", "{tmp}/s", "--verify", "{run}"]]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] if c[0] != "scan" else "scan-verify" for c in COMMANDS])
def test_commands_for_classifiers_refuse_a_point_detector_in_one_line(random_run, tmp_path, capsys, command):
    image = tmp_path / "data" / "x" / "a.png"
    image.parent.mkdir(parents=True)
    blob_photo(image, count=3, size=128)
    names = {"run": random_run, "image": image, "data": tmp_path / "data", "tmp": tmp_path,
             "dots": image.with_suffix(".csv"), "other": random_run}
    code, out, err = cli(*[part.format(**names) for part in command], capsys=capsys)
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and "Traceback" not in err, err
    assert "point detector" in lines[0] and out == "", lines[0]


def test_mining_with_a_point_detector_adds_its_strongest_false_centres_far_from_every_dot(random_run, tmp_path,
                                                                                           capsys):
    from cnnkit.scan.points import centre_map, load_point_detector
    from cnnkit.scan.scan import load_photo

    photo = tmp_path / "b.png"
    dots = np.array(blob_photo(photo, seed=2, count=12))
    code, out, err = cli("patches", photo, "--dots", photo.with_suffix(".csv"), "--size", "48", "--radius", "24",
                         "--backgrounds", "6", "--out", tmp_path / "p", "--hard-negatives", random_run, capsys=capsys)
    assert code == 0, err
    assert f"cnnkit points PHOTO... --dots CSV... --patches {tmp_path / 'p'}" in out  # what to train next
    rows = list(csv.DictReader(open(tmp_path / "p" / "manifest.csv")))
    mined = np.array([(int(r["row"]), int(r["col"])) for r in rows if r["kind"] == "hard negative"])
    assert len(mined) == 6 and {r["class"] for r in rows if r["kind"] == "hard negative"} == {"background"}
    assert all(np.hypot(*(dots - m).T).min() >= 24 for m in mined)  # never on an object
    assert all(np.hypot(*(mined[k] - mined[:k]).T).min() >= 48 for k in range(1, 6))  # a patch side apart
    assert mined.min() >= 24 and mined.max() <= 512 - 24  # wholly inside: its strongest peaks lie on the edges
    # the detector's strongest false centres, strongest first: the first is the highest cell far from every dot
    net, record = load_point_detector(random_run)
    heat = centre_map(net, record, load_photo(photo, 3))
    ii, jj = np.mgrid[:heat.shape[0], :heat.shape[1]] * CELL + CELL / 2
    far = np.hypot(ii[..., None] - dots[:, 0], jj[..., None] - dots[:, 1]).min(-1) >= 24
    far &= (np.minimum(ii, jj) >= 24) & (np.maximum(ii, jj) <= 512 - 24)
    scores = [heat[(r - CELL // 2) // CELL, (c - CELL // 2) // CELL] for r, c in mined]
    assert scores[0] == heat[far].max() and scores == sorted(scores, reverse=True), scores


def test_mining_finds_a_weak_false_centre_beside_an_object_and_nothing_on_the_edges():
    from cnnkit.patches.mine import _candidates_only
    from cnnkit.scan.detect import detect
    from cnnkit.scan.scan import ScanResult

    heat = np.full((1, 40, 40), 0.01, np.float32)
    heat[0, 20, 20] = 0.9  # an object's centre, on its dot
    heat[0, 20, 24] = 0.4  # a false centre 32 px beside it: a 48 px window's peaks would merge them
    heat[0, 0, :] = heat[0, :, 0] = 0.95  # the map's edges, where a window would reach past the photo
    result = ScanResult(heat, CELL, (CELL, CELL), 0.0, False, "points")
    dots = np.array([[20 * CELL + 4.0, 20 * CELL + 4.0]])
    plain = detect(result, ["object"], 0.0, 48, ())
    assert not any((d.row, d.col) == (164, 196) for d in plain)  # hidden by the object's higher peak
    found = detect(_candidates_only(result, dots, 24, (320, 320), 48), ["object"], 0.0, 48, ())
    assert (found[0].row, found[0].col, found[0].score) == (164, 196, np.float32(0.4))
    assert all(24 <= d.row <= 296 and 24 <= d.col <= 296 for d in found)  # windows wholly inside
    assert all(np.hypot(d.row - 164, d.col - 164) >= 24 for d in found)  # none on the object
    wide = detect(_candidates_only(result, dots, 100, (320, 320), 48), ["object"], 0.0, 48, ())
    assert wide and all(np.hypot(d.row - 164, d.col - 164) >= 100 for d in wide)  # a blocked cell is never a peak


def test_mining_with_a_detector_that_names_classes(tmp_path, capsys):
    run = fake_run(tmp_path / "run", by_class=True)
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=2, count=12, second="cyan")
    code, _, err = cli("patches", photo, "--dots", photo.with_suffix(".csv"), "--size", "48", "--backgrounds", "4",
                       "--out", tmp_path / "p", "--hard-negatives", run, capsys=capsys)
    rows = list(csv.DictReader(open(tmp_path / "p" / "manifest.csv")))
    assert code == 0 and sum(r["kind"] == "hard negative" for r in rows) == 4, err


def test_a_point_detector_learns_from_several_patch_folders_and_says_how_many_of_each(tmp_path):
    from cnnkit.training.point_data import load_patches
    from cnnkit.training.points import _first_record

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
    record = _first_record(config, [load_dotted(photo, photo.with_suffix(".csv"), None, 64, CELL)], patches)
    assert [(Path(p.folder).name, p.objects, p.backgrounds) for p in record.points.patches] == [("a", 3, 2),
                                                                                               ("b", 0, 4)]
    assert record.__class__.from_dict(record.to_dict()) == record
    old = record.to_dict()  # a record written when one folder was taken
    old["points"]["patches"], old["points"]["settings"]["patches"] = old["points"]["patches"][0], str(tmp_path / "a")
    assert record.__class__.from_dict(old).points.patches[0].folder == record.points.patches[0].folder
    assert PointsConfig(patches="x").patches == ("x",)


def test_a_detector_that_names_classes_learns_each_dots_class_around_its_cell(tmp_path):
    from cnnkit.training.point_data import training_data

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


def test_a_detector_that_names_classes_names_each_detection_by_its_cell(tmp_path, capsys):
    from cnnkit.config.parse import parse_region
    from cnnkit.scan.points import load_point_detector, point_maps
    from cnnkit.scan.scan import load_photo

    run = fake_run(tmp_path / "run", threshold=0.2, by_class=True)
    record = RunFolder(run).read_record()
    assert record.names_objects and record.classes == ("blob", "cyan") and record.model.num_classes == 2
    photo = tmp_path / "b.png"
    blob_photo(photo, seed=1, second="cyan")
    code, out, err = cli("scan", run, photo, "--dots", photo.with_suffix(".csv"), "--out", tmp_path / "s",
                         "--precision", "32", capsys=capsys)
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "s" / "detections.csv")))
    net, record = load_point_detector(run)
    _, names = point_maps(net, record, load_photo(photo, 3))
    assert rows and names.shape == (2, 64, 64) and np.allclose(names.sum(0), 1.0, atol=1e-4)
    for r in rows:  # each detection is named by the most probable class of its own cell
        i, j = int(float(r["row"]) // CELL), int(float(r["col"]) // CELL)
        assert r["class"] == record.classes[int(names[:, i, j].argmax())]
    report = json.loads((tmp_path / "s" / "dots.json").read_text())
    assert set(report) == {"blob", "cyan"} and "all objects" in out  # per-class rows without a verifier
    assert "never names" not in err
    renamed = tmp_path / "typo.csv"  # "cyan" misspelt: its row finds nothing, and one line says why
    renamed.write_text(photo.with_suffix(".csv").read_text().replace("cyan", "cyann"))
    code, out, err = cli("scan", run, photo, "--dots", renamed, "--out", tmp_path / "s2", "--precision", "32",
                         capsys=capsys)
    warned = [line for line in err.splitlines() if "never names" in line]
    assert code == 0 and len(warned) == 1 and "cyann" in warned[0] and "blob, cyan" in warned[0], err
    assert "cyann" in out and "(not a class of the scan)" in out
    # at half scale in a region: the cell of each detection in the scanned (resized, cut) photo names it
    code, _, err = cli("scan", run, photo, "--out", tmp_path / "half", "--scale", "0.5", "--region", "128:,64:",
                       "--precision", "32", capsys=capsys)
    assert code == 0, err
    _, half = point_maps(net, record, load_photo(photo, 3, 0.5, parse_region("128:,64:")))
    named = list(csv.DictReader(open(tmp_path / "half" / "detections.csv")))
    assert named
    for r in named:  # rows are in the photo's pixels: into the region's, then halved, then to cells
        i, j = int((float(r["row"]) - 128) * 0.5 // CELL), int((float(r["col"]) - 64) * 0.5 // CELL)
        assert r["class"] == record.classes[int(half[:, i, j].argmax())]
    counts = json.loads((tmp_path / "s" / "counts.json").read_text())
    assert set(counts) == {"blob", "cyan"} and sum(counts.values()) == len(rows)  # the classes, not "animal"
    code, _, err = cli("scan", run, photo, "--dots", photo.with_suffix(".csv"), "--out", tmp_path / "s2",
                       "--choose-thresholds", capsys=capsys)  # the centre map's threshold, against every dot
    assert code == 0 and set(RunFolder(run).read_record().scan_thresholds["per_class"]) == {"animal"}, err


def test_serving_refuses_a_point_detector_before_it_starts(random_run):
    pytest.importorskip("fastapi")
    from cnnkit.serve.app import create_app

    with pytest.raises(CnnkitError, match="point detector's run"):
        create_app([random_run])


# --- bad input ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, words", [
    (["--crop", "100"], "--crop a multiple of 32"),
    (["--crop", "32"], "Expected --crop >= 64"),
    (["--epochs", "1", "--steps", "3"], "at least 4 training steps"),
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
        from cnnkit.training.point_data import load_patches

        load_patches(patches, CELL)


# --- learning, and a killed training resumed (slow: real trainings) -------------------------------------------------

@pytest.mark.slow
def test_a_point_detector_trained_on_one_photo_finds_the_objects_of_another(tmp_path, capsys):
    blob_photo(tmp_path / "a.png", seed=0)
    blob_photo(tmp_path / "b.png", seed=1)
    small = ["--epochs", "2", "--steps", "15", "--crop", "128", "--batch-size", "4", "--no-progress"]
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
                         "--by-class", "--epochs", "2", "--steps", "15", "--crop", "128", "--batch-size", "4",
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
    args = ["--epochs", "6", "--steps", "12", "--crop", "64", "--batch-size", "2", "--no-progress", "--by-class",
            "--augment", "brightness=0.3,saturation=0.8"]  # its draws too resume where they were
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    done = cnnkit("points", tmp_path / "a.png", "--dots", tmp_path / "a.csv", "--out", whole, *args)
    assert done.returncode == 0, done.stderr
    process = start("points", tmp_path / "a.png", "--dots", tmp_path / "a.csv", "--out", killed, *args)
    wait_for(lambda: epochs_logged(killed) >= 2, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((killed / "config.json").read_text())["status"] == "training"
    assert 2 <= epochs_logged(killed) < 6  # killed mid-training
    scanned = cnnkit("scan", killed, tmp_path / "a.png", "--out", tmp_path / "s")
    assert scanned.returncode == 0 and "was killed while training" in scanned.stderr  # its last epoch's weights
    refused = cnnkit("train", "--resume", killed, "--epochs", "9")
    assert refused.returncode == 1 and "one-cycle schedule" in refused.stderr
    resumed = cnnkit("train", "--resume", killed)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((killed / "config.json").read_text())["status"] == "finished"
    assert same_weights(whole, killed)
    assert history(whole) == history(killed)  # the same epochs with the same losses, none lost or repeated
