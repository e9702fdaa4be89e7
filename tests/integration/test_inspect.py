"""``cnnkit inspect``, the report's Grad-CAM beside the worst mistakes and ``summary --receptive-field``, driven as a
user drives them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnkit.cli import main
from tests.conftest import network_run

FIGURES = {"filters.png", "activations.png", "gradcam_predicted.png", "gradcam_true.png", "occlusion.png",
           "integrated_gradients.png"}


def run_cli(*args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def first_image(data: Path, label: str) -> Path:
    return sorted((data / label).iterdir())[0]


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_inspect_writes_every_view_and_a_page(trained_run, pattern_data, tmp_path, capsys):
    image = first_image(pattern_data, "right")
    code, out, err = run_cli("inspect", trained_run, image, "--out", tmp_path / "look", "--label", "top",
                             capsys=capsys)
    assert code == 0, err
    found = json.loads((tmp_path / "look" / "inspect.json").read_text())
    assert {p.name for p in (tmp_path / "look").iterdir()} == FIGURES | {"inspect.json", "inspect.html"}
    assert found["true"] == "top" and found["predicted"] == max(found["probabilities"], key=found["probabilities"].get)
    assert sum(found["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert f"predicted {found['predicted']}" in out and "inspect.html" in out
    page = (tmp_path / "look" / "inspect.html").read_text()
    for section in ("filters", "activations", "gradcam_predicted", "gradcam_true", "occlusion",
                    "integrated_gradients"):
        assert f'id="{section}"' in page
    assert page.count("data:image/png;base64,") == len(FIGURES)  # self-contained
    code, _, _ = run_cli("inspect", trained_run, image, "--out", tmp_path / "look", capsys=capsys)
    assert code == 0 and not (tmp_path / "look" / "gradcam_true.png").exists()  # the folder is replaced whole


@pytest.mark.slow
def test_inspect_works_on_a_pretrained_backbone(trained_run, pattern_data, tmp_path, capsys):
    run = network_run("efficientnet_lite0", trained_run, tmp_path / "lite0", size=32)
    code, out, err = run_cli("inspect", run, first_image(pattern_data, "left"), "--out", tmp_path / "look",
                             "--maps-per-stage", "4", capsys=capsys)
    assert code == 0, err
    stages = json.loads((tmp_path / "look" / "inspect.json").read_text())["stages"]
    assert stages[0]["name"].startswith("backbone.blocks") and all(len(s["channels"]) == 4 for s in stages)


def test_inspect_refuses_bad_input_in_one_line(trained_run, pattern_data, tmp_path, capsys):
    image = first_image(pattern_data, "left")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    cases = {
        "unknown class": (["--label", "cat", "--out", tmp_path / "a"], "'cat' is not a class of this run"),
        "someone's folder": (["--out", tmp_path / "taken"], "not an inspect folder"),
        "window too small": (["--window", "1", "--out", tmp_path / "b"], "--window"),
        "window too large": (["--window", "100", "--out", tmp_path / "b"], "Expected --window <= 16"),
    }
    for name, (extra, message) in cases.items():
        code, out, err = run_cli("inspect", trained_run, image, *extra, capsys=capsys)
        assert code == 1 and message in err and len(err.strip().splitlines()) == 1, name
    code, _, err = run_cli("inspect", trained_run, tmp_path / "broken.png", "--out", tmp_path / "c", capsys=capsys)
    assert code == 1 and "broken.png" in err and "Traceback" not in err
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine" and not (tmp_path / "a").exists()


def test_the_report_shows_where_the_network_looked_beside_each_worst_mistake(pattern_data, tmp_path):
    from PIL import Image
    from scipy import ndimage

    from cnnkit.config import TrainConfig
    from cnnkit.evaluation.evaluate import evaluate_run
    from cnnkit.training.fit import train

    run = tmp_path / "untrained"  # one epoch at a tiny rate: mistakes to show
    train(pattern_data, run, TrainConfig(model="tiny_cnn", epochs=1, batch_size=64, lr=1e-6), progress=False)
    metrics = evaluate_run(run).metrics
    assert metrics["worst_mistakes"]
    assert (run / "figures" / "mistakes.png").exists()
    assert metrics["grad_cam_beside_mistakes"] and "where the network looked" in (run / "report.html").read_text()
    figure = np.asarray(Image.open(run / "figures" / "mistakes.png").convert("RGB")).astype(int)
    coloured, _ = ndimage.label(figure.max(-1) - figure.min(-1) > 40)  # the images are grey: a map is in colour
    maps = np.bincount(coloured.ravel())[1:]
    assert (maps > 1000).sum() == len(metrics["worst_mistakes"])  # a map is blended in beside each mistake


def test_a_baseline_s_report_claims_no_grad_cam(pattern_data, tmp_path):
    from cnnkit.baselines.fit import train_baseline
    from cnnkit.evaluation.evaluate import evaluate_run

    run = train_baseline(pattern_data, tmp_path / "knn", method="knn").run_dir
    metrics = evaluate_run(run).metrics
    assert not metrics["grad_cam_beside_mistakes"]
    assert "where the network looked" not in (run / "report.html").read_text()


def test_summary_draws_the_receptive_field_of_a_layer(trained_run, pattern_data, tmp_path, capsys):
    code, out, err = run_cli("summary", "vgg_small", "--input", "3x32x32", "--receptive-field", "features.12",
                             "--out", tmp_path / "rf.png", capsys=capsys)
    assert code == 0, err
    assert "Receptive field of features.12 (centre unit): 14x14 input pixels" in out
    assert (tmp_path / "rf.png").read_bytes().startswith(b"\x89PNG")
    code, out, err = run_cli("summary", trained_run, "--receptive-field", "features.0", "--image",
                             first_image(pattern_data, "top"), "--out", tmp_path / "run-rf.png", capsys=capsys)
    assert code == 0 and "3x3 input pixels" in out and (tmp_path / "run-rf.png").exists()
    code, _, err = run_cli("summary", "vgg_small", "--image", "x.png", capsys=capsys)
    assert code == 1 and "--receptive-field" in err
