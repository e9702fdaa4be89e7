"""ONNX export: the graph matches torch for every model family, the light predictor gives the torch path's classes
without importing torch, a stale export is never used silently, and int8 quantization reports what it costs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnkit.errors import RunError
from cnnkit.export.run import export_run
from cnnkit.inference import Predictor
from tests.conftest import network_run


def _test_images(run: Path) -> list[Path]:
    split = json.loads((run / "split.json").read_text())
    return [Path(split["root"]) / p for p, _ in split["splits"]["test"]]


def _torch_and_onnx(run: Path, images: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    torch_p = Predictor.load(run, backend="torch").predict_proba(images)
    onnx_p = Predictor.load(run, backend="onnx").predict_proba(images)
    return torch_p, onnx_p


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_the_export_of_a_trained_run_matches_torch_and_the_light_predictor_agrees(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    result = export_run(run)
    assert result.path == run / "export" / "model.onnx" and result.max_difference <= 1e-4
    info = json.loads((run / "export" / "export.json").read_text())
    assert info["opset"] == 18 and info["input"]["dtype"] == "uint8" and info["input"]["shape"][0] == "batch"
    images = _test_images(run)
    torch_p, onnx_p = _torch_and_onnx(run, images)
    assert np.abs(torch_p - onnx_p).max() <= 1e-4
    assert [p.label for p in Predictor.load(run, backend="onnx").predict(images)] == [
        p.label for p in Predictor.load(run, backend="torch").predict(images)]
    assert Predictor.load(run).backend == "onnx"  # auto: the up-to-date export
    batch = Predictor.load(run, backend="onnx").load_images(images[:5])
    for n in (1, 3, 5):  # the batch size is dynamic
        assert Predictor.load(run, backend="onnx").predict_arrays(batch[:n]).shape == (n, 3)
    vectors = Predictor.load(run, backend="onnx").embed_arrays(batch)
    assert np.abs(vectors - Predictor.load(run, backend="torch").embed_arrays(batch)).max() <= 1e-4


def test_commands_that_measure_the_network_never_use_its_export(trained_run, tmp_path):
    """evaluate, scan and the estimator run the torch network of an exported run, with test-time augmentation too."""
    from PIL import Image

    from cnnkit import ImageClassifier
    from cnnkit.evaluation.evaluate import evaluate_run
    from cnnkit.scan.photo import scan_photo

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    export_run(run)
    metrics = evaluate_run(run, out=tmp_path / "eval", report=False).metrics
    assert metrics["backend"] == "torch" and Predictor.load(run).backend == "onnx"
    assert ImageClassifier.load(run).predictor_.backend == "torch"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    scan_photo(run, tmp_path / "p.png", tmp_path / "scan")
    assert (tmp_path / "scan" / "counts.json").exists()


FAMILIES = [("tiny_cnn", 16, None), ("simple_cnn", 32, None), ("patch_cnn", 32, None), ("lenet5", 32, None),
            ("vgg_small", 32, None), ("vgg16", 32, None), ("test_efficientnet", 64, {"flip_average": True}),
            ("efficientnet_lite0", 64, None)]


@pytest.mark.slow
@pytest.mark.parametrize("family, size, options", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_model_family_exports_within_1e_4_of_torch(trained_run, tmp_path, family, size, options):
    run = network_run(family, trained_run, tmp_path / family, size, options)
    result = export_run(run)
    assert result.max_difference <= 1e-4
    torch_p, onnx_p = _torch_and_onnx(run, _test_images(run))
    assert np.abs(torch_p - onnx_p).max() <= 1e-4
    assert (torch_p.argmax(1) == onnx_p.argmax(1)).all()


def test_a_stale_export_is_never_used_silently(trained_run, tmp_path, caplog):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    export_run(run)
    other = network_run("tiny_cnn", trained_run, tmp_path / "other", 16)  # same network, other weights
    shutil.copyfile(other / "model.safetensors", run / "model.safetensors")
    assert Predictor.load(run).backend == "torch"
    assert "not made from its current weights" in caplog.text
    with pytest.raises(RunError, match="cnnkit export"):
        Predictor.load(run, backend="onnx")
    shutil.rmtree(run / "export")
    with pytest.raises(RunError, match="has no export"):
        Predictor.load(run, backend="onnx")


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_the_light_predictor_imports_no_torch(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    export_run(run)
    image = _test_images(run)[0]
    code = ("import sys\nfrom cnnkit.cli import main\n"
            f"status = main(['predict', {str(run)!r}, {str(image)!r}])\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', status)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "NO-TORCH 0" and lines[0].startswith(str(image))
    assert "(onnx backend)" in done.stderr


@pytest.mark.slow
def test_int8_export_reports_its_accuracy_change_on_the_test_split(trained_run, tmp_path):
    from cnnkit.config import ExportConfig

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    result = export_run(run, ExportConfig(quantize="int8", tolerance=100.0))
    q = result.int8
    assert (run / "export" / "model.int8.onnx").exists() and q["used"] and result.path.name == "model.int8.onnx"
    test = _test_images(run)
    assert q["images"] == len(test)
    labels = np.array([["left", "right", "top"].index(p.parent.name) for p in test])
    int8 = Predictor.load(run, backend="onnx").predict_proba(test)  # the int8 model is the one in use
    assert q["accuracy_int8"] == pytest.approx(float((int8.argmax(1) == labels).mean()))
    assert abs(q["points_lost"] - 100 * (q["accuracy_float"] - q["accuracy_int8"])) < 1e-9
    strict = export_run(run, ExportConfig(quantize="int8", tolerance=0.0))
    assert strict.int8["used"] == (strict.int8["points_lost"] <= 0.0)
    assert strict.path.name == ("model.int8.onnx" if strict.int8["used"] else "model.onnx")


def test_export_json_binds_the_onnx_file_by_its_sha256(trained_run, tmp_path):
    import hashlib

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    export_run(run)
    info = json.loads((run / "export" / "export.json").read_text())
    assert info["sha256"] == {"model.onnx": hashlib.sha256((run / "export" / "model.onnx").read_bytes()).hexdigest()}


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_a_replaced_or_deleted_model_onnx_is_never_used_silently(trained_run, tmp_path, caplog):
    """Another run's model.onnx copied in (same network, other weights): predict, serve and the Python API all load
    through ``usable_export``, which compares the file with the SHA-256 export.json recorded."""
    from cnnkit.cli import main

    run, other = tmp_path / "run", network_run("tiny_cnn", trained_run, tmp_path / "other", 16)
    shutil.copytree(trained_run, run)
    export_run(run)
    export_run(other)
    shutil.copyfile(other / "export" / "model.onnx", run / "export" / "model.onnx")
    assert Predictor.load(run).backend == "torch"  # auto: the network, and a warning that says why
    assert "model.onnx is not the file `cnnkit export` wrote" in caplog.text
    with pytest.raises(RunError, match=r"model.onnx is not the file `cnnkit export` wrote .* run `cnnkit export "):
        Predictor.load(run, backend="onnx")
    assert main(["predict", str(run), str(_test_images(run)[0]), "--backend", "onnx"]) == 1
    (run / "export" / "model.onnx").unlink()
    with pytest.raises(RunError, match=r"model.onnx, the model export.json names, is missing: run `cnnkit export"):
        Predictor.load(run, backend="onnx")


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_an_onnx_of_another_input_shape_is_one_clean_line_in_the_api_too(trained_run, tmp_path):
    """Even with export.json rewritten to match it, an ONNX file that takes other images is refused when loaded,
    never by onnxruntime on the first batch; arrays of another shape are refused by the predictor."""
    import hashlib

    from cnnkit.errors import ConfigError
    from cnnkit.inference.onnx import OnnxPredictor
    from cnnkit.run import RunFolder

    run, wide = tmp_path / "run", network_run("tiny_cnn", trained_run, tmp_path / "wide", 32)
    shutil.copytree(trained_run, run)
    export_run(run)
    export_run(wide)
    shutil.copyfile(wide / "export" / "model.onnx", run / "export" / "model.onnx")
    info = json.loads((run / "export" / "export.json").read_text())
    info["sha256"]["model.onnx"] = hashlib.sha256((run / "export" / "model.onnx").read_bytes()).hexdigest()
    (run / "export" / "export.json").write_text(json.dumps(info))
    with pytest.raises(RunError, match=r"model.onnx is not this run's export: it takes .*32, 32, 3.* where the run "
                                       r"needs images \(batch, 16, 16, 3\) uint8") as error:
        Predictor.load(run, backend="onnx")
    assert "\n" not in str(error.value)
    record = RunFolder(run).read_record()
    with pytest.raises(RunError, match="is not this run's export"):
        OnnxPredictor(run / "export" / "model.onnx", record)
    predictor = OnnxPredictor(wide / "export" / "model.onnx", RunFolder(wide).read_record())
    with pytest.raises(ConfigError, match=r"Expected images of shape \(N, 32, 32, 3\) and dtype uint8.*\(2, 16, 16, 3\)"):
        predictor.predict_arrays(np.zeros((2, 16, 16, 3), np.uint8))
