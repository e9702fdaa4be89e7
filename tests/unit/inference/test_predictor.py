import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnkit import ImageClassifier
from cnnkit.errors import DataError, RunError
from cnnkit.inference import Predictor


def _test_images(run: Path) -> list[Path]:
    from cnnkit._io import read_json

    split = read_json(run / "split.json")
    return [Path(split["root"]) / p for p, _ in split["splits"]["test"]]


def test_save_load_identical_predictions(trained_run: Path, tmp_path: Path):
    images = _test_images(trained_run)
    original = ImageClassifier.load(trained_run)
    saved = original.save(tmp_path / "copy")
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "model.safetensors", "split.json"]
    reloaded = ImageClassifier.load(saved)
    assert np.array_equal(original.predict_proba(images), reloaded.predict_proba(images))
    assert reloaded.classes_ == ["left", "right", "top"]
    assert reloaded.predict(images[:3]) == original.predict(images[:3])


def test_predictions_are_probabilities_and_folders_expand(trained_run: Path):
    predictor = Predictor.load(trained_run)
    folder = _test_images(trained_run)[0].parent
    predictions = predictor.predict([folder])
    assert len(predictions) == len(list(folder.glob("*.png")))
    for p in predictions:
        assert abs(sum(p.probabilities.values()) - 1) < 1e-5 and p.probability == max(p.probabilities.values())


def test_unfitted_classifier_says_so():
    with pytest.raises(RunError, match="not fitted yet"):
        ImageClassifier().predict(["a.png"])
    with pytest.raises(TypeError, match="unknown settings"):
        ImageClassifier(epoch=3)


def test_broken_or_missing_run_files(trained_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(RunError, match=r"model\.safetensors is broken"):
        Predictor.load(run)
    (run / "model.safetensors").unlink()
    with pytest.raises(RunError, match="does not exist"):
        Predictor.load(run)
    (run / "config.json").write_text("{ half a file")
    with pytest.raises(RunError, match=r"config\.json is broken"):
        Predictor.load(run)
    with pytest.raises(RunError, match="does not exist"):
        Predictor.load(tmp_path / "nowhere")


def test_weights_for_another_model_are_refused(trained_run: Path, tmp_path: Path):
    import json

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    config = json.loads((run / "config.json").read_text())
    config["classes"].append("extra")
    config["model"]["num_classes"] = 4  # a consistent record whose weights belong to a 3-class model
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match="does not match the model"):
        Predictor.load(run)


def test_predict_missing_image(trained_run: Path, tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        Predictor.load(trained_run).predict([tmp_path / "ghost.png"])


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_prediction_does_not_import_the_training_stack(trained_run: Path):
    image = _test_images(trained_run)[0]
    code = (
        "import sys; from cnnkit.cli import main; "
        f"assert main(['predict', {str(trained_run)!r}, {str(image)!r}]) == 0; "
        "heavy = [m for m in ('lightning', 'pytorch_lightning', 'torchmetrics', 'timm') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
