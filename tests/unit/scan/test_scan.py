"""Scanning: the dense network is exact for unpadded CNNs, tiles stitch exactly, counts on a known scene."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.cli import main
from cnnkit.data.preprocess import Preprocessing
from cnnkit.errors import CnnkitError
from cnnkit.models import create_model
from cnnkit.scan.dense import dense_network
from cnnkit.data.dots import read_dots
from cnnkit.scan.detect import compare_with_dots
from cnnkit.scan.windows import dense_scan, scan, sliding_scan

PREP = Preprocessing((24, 24), 3, (0.4, 0.5, 0.3), (0.2, 0.25, 0.2))


def random_model(name: str, seed: int = 0, **options):
    torch.manual_seed(seed)
    model = create_model(name, 4, 3, (24, 24), **options)
    with torch.no_grad():  # batch-norm statistics away from their defaults, so that they matter
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def photo(height: int, width: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("stride_factor", [1, 3])
def test_dense_scan_equals_classifying_each_patch_alone(stride_factor):
    model = random_model("patch_cnn")
    dense = dense_network(model, 3, (24, 24))
    assert dense.exact and dense.natural_stride == 4
    stride = dense.natural_stride * stride_factor
    image = photo(83, 70)
    dense_p = scan(model, PREP, image, stride).probabilities
    sliding_p = sliding_scan(model, image, PREP, (24, 24), stride)
    assert dense_p.shape == sliding_p.shape == (4, (83 - 24) // stride + 1, (70 - 24) // stride + 1)
    assert np.abs(dense_p - sliding_p).max() < 1e-4


@pytest.mark.parametrize("name", ["patch_cnn", "simple_cnn"])
def test_tiles_stitch_to_the_untiled_result(name):
    model = random_model(name)
    dense = dense_network(model, 3, (24, 24))
    image = photo(150, 131, seed=2)
    whole = dense_scan(dense, image, PREP, tile=10_000)
    tiled = dense_scan(dense, image, PREP, tile=40)
    assert whole.shape == tiled.shape and np.abs(whole - tiled).max() < 1e-5


def test_padded_networks_are_flagged_approximate():
    model = random_model("simple_cnn")
    dense = dense_network(model, 3, (24, 24))
    assert not dense.exact and dense.margin > 0
    image = photo(60, 60)
    approximate = scan(model, PREP, image).probabilities
    reference = sliding_scan(model, image, PREP, (24, 24), dense.stride)
    assert approximate.shape == reference.shape
    assert np.abs(approximate - reference).max() < 1.0  # close in places, not equal: zero padding vs real context


def test_a_backbone_with_a_pooling_head_scans_densely():
    torch.manual_seed(0)
    model = create_model("efficientnet_lite0", 3).eval()
    prep = Preprocessing((64, 64), 3, (0.5,) * 3, (0.5,) * 3)
    result = scan(model, prep, photo(160, 128), stride=32)
    assert not result.exact and result.probabilities.shape == (3, 4, 3)
    assert np.allclose(result.probabilities.sum(0), 1, atol=1e-5)
    with pytest.raises(CnnkitError, match="multiple of the network's own stride 32"):
        scan(model, prep, photo(160, 128), stride=16)


def test_bad_photos_and_dots_give_clear_errors(tmp_path):
    model = random_model("patch_cnn")
    with pytest.raises(CnnkitError, match="smaller than one patch"):
        scan(model, PREP, photo(20, 100))
    from cnnkit.scan.windows import load_photo

    Image.fromarray(photo(40, 40)[..., 0]).save(tmp_path / "gray.png")
    with pytest.raises(CnnkitError, match="gray.png is a grayscale photo"):
        load_photo(tmp_path / "gray.png", 3)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(CnnkitError, match="broken.jpg"):
        load_photo(tmp_path / "broken.jpg", 3)
    (tmp_path / "dots.csv").write_text("tid,cls,row,x\n1,0,5,6\n")
    with pytest.raises(CnnkitError, match=r"no column\(s\) \['class_name', 'col'\]"):
        read_dots(tmp_path / "dots.csv")


def test_matching_detections_to_dots():
    from cnnkit.scan.detect import Detection

    detections = [Detection("car", 10, 10, 0.9), Detection("car", 50, 50, 0.8), Detection("car", 90, 90, 0.7)]
    dots = [("car", 12, 11), ("car", 52, 47), ("boat", 5, 5)]
    report = compare_with_dots(detections, dots, ["boat", "car"], radius=5)
    assert report["car"] == {"detected": 3, "dots": 2, "count_error": 1, "matched": 2, "precision": 2 / 3,
                             "recall": 1.0, "known_class": True}
    assert report["boat"]["recall"] == 0.0 and report["boat"]["precision"] is None


def test_the_class_agnostic_comparison_matches_any_class_and_tables_the_confusion():
    from cnnkit.scan.detect import Detection, overall_with_dots

    detections = [Detection("car", 10, 10, 0.9), Detection("boat", 50, 50, 0.8), Detection("car", 90, 90, 0.7),
                  Detection("car", 52, 49, 0.6)]
    dots = [("car", 12, 11), ("car", 52, 47), ("boat", 5, 5), ("boat", 91, 88)]
    overall = overall_with_dots(detections, dots, radius=5)
    assert overall["detected"] == 4 and overall["dots"] == 4 and overall["count_error"] == 0
    assert overall["matched"] == 3 and overall["precision"] == 0.75 and overall["recall"] == 0.75
    # the boat at (50, 50) and the car at (52, 49) both reach the car dot at (52, 47): one match either way, and
    # the optimal assignment takes the nearer (the car)
    assert overall["confusion"] == {"car": {"car": 2}, "boat": {"car": 1}}
    assert overall_with_dots([], [], 5)["precision"] is None


@pytest.fixture(scope="module")
def aerial(tmp_path_factory):
    root = tmp_path_factory.mktemp("aerial")
    assert main(["datasets", "export", "aerial", str(root / "data"), "--size", "60"]) == 0
    assert main(["-q", "train", str(root / "data" / "patches"), "--model", "patch_cnn", "--epochs", "25",
                 "--augment", "flip=hv,rotate=180", "--out", str(root / "run"), "--no-progress"]) == 0
    return root


@pytest.mark.slow
def test_counts_on_synthetic_scenes_match_the_dots(aerial, capsys):
    for k in (0, 1):
        out = aerial / f"scan{k}"
        scene = aerial / "data" / "scenes" / f"scene_{k}.png"
        dots = aerial / "data" / "scenes" / f"scene_{k}-dots.csv"
        assert main(["scan", str(aerial / "run"), str(scene), "--out", str(out), "--dots", str(dots)]) == 0
        expected = {c: sum(1 for label, _, _ in read_dots(dots) if label == c) for c in ("boat", "car", "tree")}
        counts = json.loads((out / "counts.json").read_text())
        assert set(counts) == {"boat", "car", "tree"}  # background is not counted
        assert all(abs(counts[c] - expected[c]) <= 1 for c in expected), (counts, expected)
        report = json.loads((out / "dots.json").read_text())
        assert all(report[c]["recall"] >= 0.75 for c in expected), report
    for name in ("heatmap_boat.png", "heatmap_boat.npy", "heatmap_background.npy", "detections.csv",
                 "detections.png", "scan.json"):
        assert (out / name).exists(), name
    assert np.load(out / "heatmap_car.npy", allow_pickle=False).ndim == 2
    assert "exact" in capsys.readouterr().out


@pytest.mark.slow
def test_sliding_method_gives_the_same_counts(aerial):
    from cnnkit.scan.photo import scan_photo

    scene = aerial / "data" / "scenes" / "scene_2.png"
    dense = scan_photo(aerial / "run", scene, aerial / "d", mode="dense", precision="32")
    sliding = scan_photo(aerial / "run", scene, aerial / "s", mode="sliding")
    assert dense["counts"] == sliding["counts"] and dense["grid"] == sliding["grid"]
    a = np.load(aerial / "d" / "heatmap_tree.npy")
    b = np.load(aerial / "s" / "heatmap_tree.npy")
    assert np.abs(a - b).max() < 1e-4
    fast = scan_photo(aerial / "run", scene, aerial / "b", mode="dense", precision="bf16")
    assert fast["precision"] == "bf16" and not fast["exact"] and dense["exact"]
    assert fast["counts"] == dense["counts"]  # bfloat16 moves probabilities a little, not the counts
    moved = np.abs(np.load(aerial / "b" / "heatmap_tree.npy") - a).max()
    assert 0 < moved < 0.05  # it did run in bfloat16, and stayed close


@pytest.mark.slow
def test_per_class_thresholds_are_chosen_on_a_validation_photo_and_used_after(aerial, tmp_path, capsys):
    import shutil

    from cnnkit.run import RunFolder

    run = tmp_path / "run"
    shutil.copytree(aerial / "run", run)  # the module's run stays as it is
    scenes = aerial / "data" / "scenes"
    assert main(["scan", str(run), str(scenes / "scene_0.png"), "--out", str(tmp_path / "validation"),
                 "--choose-thresholds"]) == 1
    assert "give --dots" in capsys.readouterr().err  # chosen against dots, or not at all
    assert main(["scan", str(run), str(scenes / "scene_0.png"), "--out", str(tmp_path / "validation"), "--dots",
                 str(scenes / "scene_0-dots.csv"), "--choose-thresholds"]) == 0
    stored = RunFolder(run).read_record().scan_thresholds
    assert set(stored.per_class) == {"boat", "car", "tree"} and "scene_0-dots.csv" in stored.source
    assert all(0 < t < 1 for t in stored.per_class.values())
    factors = stored.distance_factors  # a least distance per class, chosen with them, as a factor of the default
    assert set(factors) == {"boat", "car", "tree"} and set(factors.values()) <= {0.5, 0.75, 1.0, 1.5}
    # counting another photo uses them, and its own dots change nothing in the run
    assert main(["scan", str(run), str(scenes / "scene_1.png"), "--out", str(tmp_path / "count"), "--dots",
                 str(scenes / "scene_1-dots.csv")]) == 0
    assert json.loads((tmp_path / "count" / "scan.json").read_text())["threshold"] == stored.per_class
    validation = json.loads((tmp_path / "validation" / "scan.json").read_text())
    half_patch = min(validation["window"]) / 2.0
    used = json.loads((tmp_path / "count" / "scan.json").read_text())["min_distance"]
    expected = {name: factors.get(name, 1.0) * half_patch for name in used}  # background: the default
    assert set(used) == {"background", "boat", "car", "tree"} and used == expected
    assert {name: validation["min_distance"][name] for name in factors} == {name: used[name] for name in factors}
    assert main(["scan", str(run), str(scenes / "scene_1.png"), "--out", str(tmp_path / "half"), "--scale",
                 "0.5"]) == 0  # at another scale the factors hold: distances in the photo's pixels double
    half = json.loads((tmp_path / "half" / "scan.json").read_text())["min_distance"]
    assert half == {name: 2 * d for name, d in expected.items()}
    assert RunFolder(run).read_record().scan_thresholds == stored
    assert main(["scan", str(run), str(scenes / "scene_1.png"), "--out", str(tmp_path / "count"), "--detection-threshold",
                 "0.9"]) == 0
    assert json.loads((tmp_path / "count" / "scan.json").read_text())["threshold"] == 0.9


def test_each_class_gets_the_least_distance_and_threshold_that_fit_its_validation_dots():
    from cnnkit.scan.detect import choose_thresholds, detect
    from cnnkit.scan.windows import ScanResult

    p = np.zeros((2, 60, 60), np.float32)
    dots = []
    for k in range(4):  # class "pair": objects in pairs 5 px apart; class "single": one object with a weaker echo
        r, c = 10 + 12 * k, 10
        p[0, r, c], p[0, r, c + 5] = 0.9, 0.8
        dots += [("pair", r + 0.5, c + 0.5), ("pair", r + 0.5, c + 5.5)]
        p[1, r, 40], p[1, r, 46] = 0.9, 0.6
        dots.append(("single", r + 0.5, 40.5))
    result = ScanResult(p, 1, (1, 1), 0.0, True, "dense")
    chosen = choose_thresholds(result, ["pair", "single"], dots, 8.0, 2.0, ())
    assert chosen["min_distance"] == {"pair": 4.0, "single": 8.0}  # 0.5 x 8 separates the pairs; ties keep 8
    found = detect(result, ["pair", "single"], chosen["per_class"], chosen["min_distance"], ())
    assert sum(d.label == "pair" for d in found) == 8 and sum(d.label == "single" for d in found) == 4
    assert sum(d.label == "pair" for d in detect(result, ["pair", "single"], 0.5, 8.0, ())) == 4  # one distance


def test_a_heatmap_carries_its_class_name_and_colour_scale():
    from matplotlib import colormaps
    from PIL import Image

    from cnnkit.scan.output import with_colour_bar

    photo = Image.new("RGB", (400, 200), (0, 128, 0))
    out = with_colour_bar(photo, "probability of car")
    assert out.size == (400, 234)
    assert np.array_equal(np.asarray(out)[34:], np.asarray(photo))  # the photo, whole, under the band
    ramp = np.asarray(out)[8, :, :]
    for end in (0.0, 1.0):  # both ends of the scale are drawn
        target = (np.array(colormaps["inferno"](end)[:3]) * 255).astype(int)
        assert (np.abs(ramp.astype(int) - target).sum(1) <= 3).any()


def test_detections_are_matched_to_dots_optimally_not_greedily():
    """The strongest detection lies between two dots, nearer the first; the other detection reaches only the first.
    Nearest-first matching pairs one; the optimal assignment pairs both."""
    from cnnkit.scan.detect import Detection, compare_with_dots, match_within, overall_with_dots

    detections = [Detection("seal", 100, 104, 0.9), Detection("seal", 100, 92, 0.6)]
    dots = [("seal", 100, 100), ("seal", 100, 112)]
    assert sorted(match_within([(d.row, d.col) for d in detections], [(r, c) for _, r, c in dots], 10)) == [
        (0, 1), (1, 0)]
    assert compare_with_dots(detections, dots, ["seal"], radius=10)["seal"]["recall"] == 1.0
    overall = overall_with_dots(detections, dots, radius=10)
    assert overall["matched"] == 2 and overall["confusion"] == {"seal": {"seal": 2}}
    assert match_within([(0, 0)], [(0, 11)], 10) == [] and match_within([], [(0, 0)], 10) == []
    assert sorted(match_within([(0, 0), (5, 5)], [(5, 5), (0, 0)], 0.0)) == [(0, 1), (1, 0)]  # exact hits only


@pytest.mark.slow
def test_a_region_is_scanned_alone_and_compared_with_its_own_dots(aerial, tmp_path, capsys):
    """Validation and counting regions of one photo: the region's detections are the whole scan's there (in the
    photo's pixels), only its dots are compared, and thresholds chosen on it say so in the run."""
    import csv
    import shutil

    from cnnkit.run import RunFolder
    from cnnkit.scan.photo import scan_photo

    scene, dots_path = aerial / "data" / "scenes" / "scene_1.png", aerial / "data" / "scenes" / "scene_1-dots.csv"
    height, width = np.asarray(Image.open(scene)).shape[:2]
    left = width // 2 // 8 * 8  # on the windows' grid, so that both scans have the same windows there
    whole = scan_photo(aerial / "run", scene, tmp_path / "whole", dots=dots_path, precision="32")
    part = scan_photo(aerial / "run", scene, tmp_path / "part", dots=dots_path, precision="32", region=f"0:,{left}:")
    dots = read_dots(dots_path)
    inside = [d for d in dots if d[2] >= left]
    assert 0 < len(inside) < len(dots) and part["dots_outside_region"] == len(dots) - len(inside)
    assert part["dots_overall"]["dots"] == len(inside) and part["region"] == f"0:,{left}:"
    assert part["photo_size"] == [height, width - left] and whole["dots_outside_region"] is None

    def rows(folder):
        with open(folder / "detections.csv", newline="") as f:
            return [(r["class"], float(r["row"]), float(r["col"])) for r in csv.DictReader(f)]
    window = part["window"][1]
    far_from_edge = [d for d in rows(tmp_path / "whole") if d[2] >= left + window]
    assert far_from_edge and set(far_from_edge) <= set(rows(tmp_path / "part"))  # the photo's pixels, not the region's
    assert all(d[2] >= left for d in rows(tmp_path / "part"))
    run = tmp_path / "run"
    shutil.copytree(aerial / "run", run)
    assert main(["scan", str(run), str(scene), "--out", str(tmp_path / "validation"), "--dots", str(dots_path),
                 "--choose-thresholds", "--region", f"0:,0:{left}"]) == 0
    stored = RunFolder(run).read_record().scan_thresholds
    assert f"region 0:,0:{left}" in stored.source
    assert main(["scan", str(run), str(scene), "--out", str(tmp_path / "empty"), "--dots", str(dots_path),
                 "--choose-thresholds", "--region", f"0:{max(1, int(min(d[1] for d in dots)) // 2)}"]) == 1
    assert "No dot of" in capsys.readouterr().err and RunFolder(run).read_record().scan_thresholds == stored
    assert main(["scan", str(run), str(scene), "--out", str(tmp_path / "bad"), "--region", f"0:{height + 1}"]) == 1
    err = capsys.readouterr().err
    assert "--region" in err and "reaches past" in err and not (tmp_path / "bad").exists()
