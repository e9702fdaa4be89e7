"""The run record: typed, versioned, one owner; runs written by f7c7ce8 still load and predict alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cnnkit._version import __version__
from cnnkit.errors import RunError
from cnnkit.inference import Predictor
from cnnkit.run import RunFolder, RunRecord

OLD_RUNS = Path(__file__).resolve().parents[2] / "fixtures" / "f7c7ce8"


@pytest.fixture
def old_runs(tmp_path) -> Path:
    return Path(shutil.copytree(OLD_RUNS, tmp_path / "f7c7ce8"))


@pytest.mark.parametrize("name", ["tiny_binary", "baseline_linear", "transfer_test_efficientnet"])
def test_runs_written_by_f7c7ce8_load_and_predict_as_they_did(old_runs, name):
    expected = json.loads((old_runs / "expected_predictions.json").read_text())[name]
    run = old_runs / name
    record = RunFolder(run).read_record()
    assert record.record_version == 1 and record.status == "finished"
    predictor = Predictor.load(run)
    probabilities = predictor.predict_proba([run / p for p in expected["paths"]])
    assert np.allclose(probabilities, expected["probabilities"], atol=1e-5)


def test_the_old_records_fields_are_typed(old_runs):
    binary = RunFolder(old_runs / "tiny_binary").read_record()
    assert binary.training.model == "tiny_cnn" and binary.training.augment == "flip"
    assert binary.decision.positive_class == "right" and 0 <= binary.decision.threshold <= 1
    assert binary.result.phases[0].name == "train" and binary.data.counts["train"] == {"left": 6, "right": 6}
    baseline = RunFolder(old_runs / "baseline_linear").read_record()
    assert baseline.model.is_baseline and baseline.baseline.method == "linear" and baseline.training is None
    assert baseline.cross_validation.folds == 2  # version 1 kept it under "training"
    transfer = RunFolder(old_runs / "transfer_test_efficientnet").read_record()
    assert transfer.training.strategy == "transfer" and transfer.pretrained_source.endswith(".safetensors")
    assert transfer.feature_cache.used


@pytest.mark.parametrize("name", ["tiny_binary", "baseline_linear", "transfer_test_efficientnet"])
def test_a_record_survives_a_round_trip(old_runs, name):
    folder = RunFolder(old_runs / name)
    record = folder.read_record()
    folder.write_record(record)
    assert folder.read_record() == record.replace(record_version=2, cnnkit_version=__version__)  # the writer's
    assert RunRecord.from_dict(record.to_dict()).to_dict() == record.to_dict()


@pytest.mark.parametrize("content", ['{"model": 3, "classes": ["a"], "preprocessing": {}}',
                                     '{"model": {"name": "tiny_cnn"}, "classes": 5, "preprocessing": []}',
                                     '[1, 2]', '{"model": {}, "classes": ["a", "b"], "preprocessing": '
                                     '{"image_size": [8, 8], "channels": 1, "mean": [0], "std": [1]}}'])
def test_a_record_of_the_wrong_shape_is_a_clear_error(old_runs, content):
    run = old_runs / "tiny_binary"
    (run / "config.json").write_text(content)
    with pytest.raises(RunError, match="config.json is broken"):
        Predictor.load(run)


def test_evaluation_never_writes_the_record_but_storing_a_threshold_does(old_runs):
    from cnnkit.evaluation.evaluate import evaluate_run
    from cnnkit.evaluation.threshold import store_threshold

    run = old_runs / "tiny_binary"
    before = (run / "config.json").read_bytes()
    evaluate_run(run, report=False)
    evaluate_run(run, data=run / "dataset", out=old_runs / "elsewhere", report=False)
    assert (run / "config.json").read_bytes() == before
    store_threshold(run, 0.25)
    record = RunFolder(run).read_record()
    assert record.decision.threshold == 0.25 and record.decision.source == "set by the user"
    assert record.record_version == 2


def test_training_writes_the_record_and_leaves_scoring_to_evaluation(pattern_data, tmp_path):
    from cnnkit.config import TrainConfig
    from cnnkit.training.fit import train

    trained = train(pattern_data, tmp_path / "run", TrainConfig(model="tiny_cnn", epochs=1), progress=False)
    assert trained.record == RunFolder(tmp_path / "run").read_record()
    assert trained.record.status == "finished" and trained.result.epochs_run == 1
    assert not (tmp_path / "run" / "metrics.json").exists()  # the test split is scored by evaluate, once


def test_split_paths_never_leave_the_data_folder(old_runs):
    run = old_runs / "tiny_binary"
    split = json.loads((run / "split.json").read_text())
    for bad in ("../../outside.png", "/etc/passwd", "left/../../x.png"):
        split["splits"]["test"][0][0] = bad
        (run / "split.json").write_text(json.dumps(split))
        with pytest.raises(RunError, match="outside the data folder"):
            RunFolder(run).read_split()


def test_a_crafted_record_cannot_allocate_beyond_its_files(old_runs):
    run = old_runs / "tiny_binary"
    record = json.loads((run / "config.json").read_text())
    record["model"]["options"] = {"hidden": 366000}  # a dense layer of 366000 x 1152: 1.7 GB of weights
    (run / "config.json").write_text(json.dumps(record))
    with pytest.raises(RunError, match="do not belong together"):
        Predictor.load(run)
    (run / "model.safetensors").unlink()  # a missing weights file is named as missing, not as 0 MB of weights
    with pytest.raises(RunError, match=r"model\.safetensors does not exist: the run's weights are missing"):
        Predictor.load(run)


@pytest.mark.parametrize("classes, found", [("AB", "str 'AB'"), ({"a": 1, "b": 2}, "dict"),
                                            (["left", 3], "list"), (["left", ""], "list"),
                                            (["left", "left"], "names a class twice")])
def test_classes_that_are_no_list_of_names_are_refused_never_read_letter_by_letter(old_runs, classes, found):
    run = old_runs / "tiny_binary"
    record = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**record, "classes": classes}))
    with pytest.raises(RunError, match=f"config.json is broken: .*{found}") as error:
        Predictor.load(run)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("entry, value", [("std", [0.0]), ("std", [float("nan")]), ("channels", 2),
                                          ("image_size", [0, 16]), ("image_size", [99999, 99999])])
def test_preprocessing_out_of_range_is_refused(old_runs, entry, value):
    run = old_runs / "tiny_binary"
    record = json.loads((run / "config.json").read_text())
    record["preprocessing"][entry] = value
    (run / "config.json").write_text(json.dumps(record))
    with pytest.raises(RunError, match="config.json is broken"):
        Predictor.load(run)


def test_a_run_that_did_not_finish_says_so_to_its_readers(old_runs, caplog):
    run = old_runs / "tiny_binary"
    folder = RunFolder(run)
    folder.write_record(folder.read_record().replace(status="interrupted", status_reason="Training was stopped"))
    Predictor.load(run)
    assert "is interrupted: Training was stopped" in caplog.text
    assert f"`cnnkit train --resume {run}`" in caplog.text  # the command that continues it, with the real folder
