"""Patches from dotted photographs come from the right places, and bad dots or photos end in one clear error."""

import csv

import numpy as np
import pytest
from PIL import Image

from cnnkit.config import PatchConfig
from cnnkit.errors import CnnkitError, ConfigError, DataError
from cnnkit.patches import make_patches

DOTS = [("seal", 40, 50), ("seal", 150, 260), ("pup", 100, 120), ("pup", 15, 290)]  # the last one near the edges


def dotted_photo(tmp_path, dots=DOTS, shape=(180, 320)):
    """A dark noisy photo with a 3x3 marker of a distinct colour at every dot; returns (photo, dots CSV, markers)."""
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 40, (*shape, 3)).astype(np.uint8)
    markers = []
    for i, (_, row, col) in enumerate(dots):
        colour = np.array([200 + 10 * i, 255 - 30 * i, 120 + 20 * i], dtype=np.uint8)
        photo[row - 1:row + 2, col - 1:col + 2] = colour
        markers.append(colour)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    with open(tmp_path / "dots.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["tid", "class_name", "row", "col"])
        writer.writerows([7, name, row, col] for name, row, col in dots)
    return tmp_path / "photo.png", tmp_path / "dots.csv", markers


def manifest(out):
    with open(out / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_patches_are_centred_on_the_dots_and_backgrounds_keep_away(tmp_path):
    photo_path, dots_path, markers = dotted_photo(tmp_path)
    photo = np.asarray(Image.open(photo_path))
    config = PatchConfig(size=32, per_dot=3, jitter=4, backgrounds=12, radius=40, seed=1)
    counts = make_patches([photo_path], [dots_path], tmp_path / "out", config)
    assert counts == {"seal": 6, "pup": 6, "background": 12}
    rows = manifest(tmp_path / "out")
    assert len(rows) == 24 and {r["photo"] for r in rows} == {str(photo_path)}
    shifted = 0
    for r in rows:
        patch = np.asarray(Image.open(tmp_path / "out" / r["file"]))
        assert patch.shape == (32, 32, 3) and r["file"].startswith(r["class"] + "/")
        row, col = int(r["row"]), int(r["col"])
        if r["kind"] == "dot":
            dot_row, dot_col = float(r["dot_row"]), float(r["dot_col"])
            index = [(d[1], d[2]) for d in DOTS].index((dot_row, dot_col))
            assert DOTS[index][0] == r["class"]
            assert abs(row - dot_row) <= 4 and abs(col - dot_col) <= 4
            shifted += (row, col) != (dot_row, dot_col)
            marker_at = (16 + int(dot_row) - row, 16 + int(dot_col) - col)  # the dot, seen in the patch
            assert (patch[marker_at] == markers[index]).all()
        else:
            assert r["class"] == "background" and r["kind"] == "background"
            assert min(np.hypot(row - d[1], col - d[2]) for d in DOTS) >= 40
            assert 16 <= row <= 180 - 16 and 16 <= col <= 320 - 16  # wholly inside the photo
            assert (patch == photo[row - 16:row + 16, col - 16:col + 16]).all()
    assert shifted > 0  # jitter moved the extra copies
    edge = [r for r in rows if r["kind"] == "dot" and r["dot_row"] == "15.0" and r["row"] == "15"
            and r["col"] == "290"]
    patch = np.asarray(Image.open(tmp_path / "out" / edge[0]["file"]))
    assert (patch[:1] == 0).all()  # past the photo's top edge: black, the dot still at the centre


def test_a_seed_gives_the_same_patches(tmp_path):
    photo_path, dots_path, _ = dotted_photo(tmp_path)
    config = PatchConfig(size=24, per_dot=2, jitter=3, backgrounds=5, seed=3)
    make_patches([photo_path], [dots_path], tmp_path / "a", config)
    make_patches([photo_path], [dots_path], tmp_path / "b", config)
    assert manifest(tmp_path / "a") == manifest(tmp_path / "b")


@pytest.mark.parametrize("dots, shape, message", [
    ([("seal", 40, 50), ("seal", 400, 50)], (180, 320), "lies outside the photo"),
    ([("seal", 40, 50), ("a/b", 60, 60)], (180, 320), "cannot be a folder name"),
    ([("seal", 40, 50), ("background", 60, 60)], (180, 320), "background patches"),
    ([("seal", 10, 10)], (20, 20), "smaller than a 32-pixel patch"),
])
def test_bad_dots_and_photos_are_refused_by_name(tmp_path, dots, shape, message):
    photo_path, dots_path, _ = dotted_photo(tmp_path, dots[:1], shape)
    with open(dots_path, "w", newline="") as f:
        csv.writer(f).writerows([["class_name", "row", "col"], *dots])
    with pytest.raises(DataError, match=message):
        make_patches([photo_path], [dots_path], tmp_path / "out", size=32)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_an_empty_dots_file_and_unpaired_files_are_refused(tmp_path):
    photo_path, dots_path, _ = dotted_photo(tmp_path)
    dots_path.write_text("class_name,row,col\n")
    with pytest.raises(DataError, match="has no dots"):
        make_patches([photo_path], [dots_path], tmp_path / "out")
    with pytest.raises(ConfigError, match="one dots file per photo"):
        make_patches([photo_path, photo_path], [dots_path], tmp_path / "out")


def test_an_existing_folder_is_kept_unless_replaced(tmp_path, capsys):
    from cnnkit.cli import main

    photo_path, dots_path, _ = dotted_photo(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(CnnkitError, match="already exists"):
        make_patches([photo_path], [dots_path], out, size=24)
    assert (out / "mine.txt").read_text() == "keep me"
    assert main(["patches", str(photo_path), "--dots", str(dots_path), "--out", str(out), "--size", "24"]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert main(["patches", str(photo_path), "--dots", str(dots_path), "--out", str(out), "--size", "24",
                 "--overwrite"]) == 0
    assert "seal 2" in capsys.readouterr().out and not (out / "mine.txt").exists()
    assert main(["patches", str(photo_path), "--dots", str(dots_path), str(dots_path), "--out", str(out)]) == 1


@pytest.fixture(scope="module")
def aerial_run(tmp_path_factory):
    from cnnkit.cli import main

    root = tmp_path_factory.mktemp("aerial")
    assert main(["datasets", "export", "aerial", str(root / "data"), "--size", "20"]) == 0
    assert main(["-q", "train", str(root / "data" / "patches"), "--model", "patch_cnn", "--epochs", "3",
                 "--out", str(root / "run"), "--no-progress"]) == 0
    return root


@pytest.mark.slow
def test_hard_negatives_are_the_runs_false_detections_away_from_every_dot(aerial_run, tmp_path):
    from cnnkit.data.dots import read_dots

    scenes = aerial_run / "data" / "scenes"
    scene, dots_path = scenes / "scene_0.png", scenes / "scene_0-dots.csv"
    dots = read_dots(dots_path)
    config = PatchConfig(size=16, backgrounds=6, radius=12, seed=2)
    plain = make_patches([scene], [dots_path], tmp_path / "plain", config)
    mined = make_patches([scene], [dots_path], tmp_path / "mined", config, hard_negatives=[aerial_run / "run"])
    rows = manifest(tmp_path / "mined")
    hard = [r for r in rows if r["kind"] == "hard negative"]
    assert 0 < len(hard) <= 6 and mined["background"] == plain["background"] + len(hard)
    assert [r for r in rows if r["kind"] != "hard negative"] == manifest(tmp_path / "plain")  # the same seed: added
    for r in hard:
        row, col = int(r["row"]), int(r["col"])
        assert r["class"] == "background" and min(np.hypot(row - d[1], col - d[2]) for d in dots) >= 12 - 0.5
    centres = [(int(r["row"]), int(r["col"])) for r in hard]
    assert all(np.hypot(a[0] - b[0], a[1] - b[1]) >= 16 for i, a in enumerate(centres) for b in centres[i + 1:])
    # a second run (here the same one again) mines new windows, never the ones the first took
    make_patches([scene], [dots_path], tmp_path / "twice", config, hard_negatives=[aerial_run / "run"] * 2)
    again = [(int(r["row"]), int(r["col"])) for r in manifest(tmp_path / "twice") if r["kind"] == "hard negative"]
    assert again[:len(centres)] == centres and len(again) > len(centres)
    assert all(np.hypot(a[0] - b[0], a[1] - b[1]) >= 16 for i, a in enumerate(again) for b in again[i + 1:])


def test_a_region_gives_the_patches_of_its_cut_in_the_photos_pixels(tmp_path):
    """Patches of a region are those of the region cut out as its own photo, moved back to the photo's pixels; its
    backgrounds also keep away from dots just past its edge."""
    dots = [("seal", 40, 50), ("pup", 100, 120), ("seal", 150, 260), ("pup", 120, 205)]  # the last: just past
    photo_path, dots_path, _ = dotted_photo(tmp_path, dots)
    photo = np.asarray(Image.open(photo_path))
    config = PatchConfig(size=24, per_dot=2, jitter=3, backgrounds=200, radius=40, seed=4, region="0:180,0:200")
    counts = make_patches([photo_path], [dots_path], tmp_path / "region", config)
    assert counts == {"seal": 2, "pup": 2, "background": 200}  # the two dots left of column 200
    (tmp_path / "cut").mkdir()
    Image.fromarray(photo[:, :200]).save(tmp_path / "cut" / "photo.png")
    with open(tmp_path / "cut" / "dots.csv", "w", newline="") as f:
        csv.writer(f).writerows([["class_name", "row", "col"], *[d for d in dots if d[2] < 200]])
    alone = manifest(tmp_path / "region")
    for r in alone:
        patch = np.asarray(Image.open(tmp_path / "region" / r["file"]))
        row, col = int(r["row"]), int(r["col"])
        assert col < 200 and min(np.hypot(row - d[1], col - d[2]) for d in dots) >= (40 if r["kind"] == "background"
                                                                                     else 0)
        inside = photo[max(0, row - 12):row + 12, max(0, col - 12):min(200, col + 12)]
        assert patch[max(0, 12 - row):, max(0, 12 - col):][:inside.shape[0], :inside.shape[1]].tolist() == \
            inside.tolist()
        if col + 12 > 200:
            assert (patch[:, 12 + 200 - col:] == 0).all()  # nothing from past the region's edge
    dot_rows = [(r["class"], r["row"], r["col"], r["dot_row"]) for r in alone if r["kind"] == "dot"]
    make_patches([tmp_path / "cut" / "photo.png"], [tmp_path / "cut" / "dots.csv"], tmp_path / "plain",
                 PatchConfig(size=24, per_dot=2, jitter=3, backgrounds=1, radius=40, seed=4))
    assert dot_rows == [(r["class"], r["row"], r["col"], r["dot_row"]) for r in manifest(tmp_path / "plain")
                        if r["kind"] == "dot"]
    lower = make_patches([photo_path], [dots_path], tmp_path / "lower", size=24, region="90:,100:320")
    rows = manifest(tmp_path / "lower")
    assert lower["seal"] == 1 and lower["pup"] == 2
    assert {(r["dot_row"], r["dot_col"]) for r in rows if r["kind"] == "dot"} == {
        ("100.0", "120.0"), ("150.0", "260.0"), ("120.0", "205.0")}  # the photo's pixels
    assert all(int(r["row"]) >= 90 + 12 and int(r["col"]) >= 100 + 12 for r in rows if r["kind"] == "background")


@pytest.mark.parametrize("region, error, message", [
    ("0:400", ConfigError, "reaches past"),
    ("180:", ConfigError, "reaches past"),  # starts at the photo's edge
    ("0:90,320:", ConfigError, "reaches past"),
    ("0:180,200:210", DataError, "smaller than a 24-pixel patch; widen `region`"),
    ("0:30,150:250", DataError, "No dot of"),
    ("10:5", ConfigError, "START < END"),
    ("top", ConfigError, "ROWS or ROWS,COLS"),
])
def test_a_bad_region_is_refused_by_name(tmp_path, region, error, message):
    photo_path, dots_path, _ = dotted_photo(tmp_path)
    with pytest.raises(error, match=message):
        make_patches([photo_path], [dots_path], tmp_path / "out", size=24, region=region)
    assert not (tmp_path / "out").exists()


def test_the_region_flag_of_the_command_line(tmp_path, capsys):
    from cnnkit.cli import main

    photo_path, dots_path, _ = dotted_photo(tmp_path)
    assert main(["patches", str(photo_path), "--dots", str(dots_path), "--out", str(tmp_path / "out"), "--size",
                 "24", "--region", "0:90"]) == 0
    assert "pup 1, seal 1" in capsys.readouterr().out  # the dots at rows 15 and 40
    with pytest.raises(SystemExit) as stop:  # argparse: the usage and one line
        main(["patches", str(photo_path), "--dots", str(dots_path), "--out", str(tmp_path / "bad"), "--region",
              "0:90,a:b"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--region" in err and "ROWS or ROWS,COLS" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("region", [{"top": -150}, {"top": 20, "bottom": 10}, {"left": 5, "right": 5},
                                    {"top": 1.5}])
def test_a_region_given_as_an_object_is_checked_too(region):
    from cnnkit.config.parse import Region

    with pytest.raises(ConfigError, match="0 <= START < END"):
        PatchConfig(region=Region(**region))
    assert str(PatchConfig(region=Region(10, None, 5, 50)).region) == "10:,5:50"
