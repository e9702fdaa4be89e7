"""evaluate_run end to end: the report, the numbers behind it, thresholds, shared classes and compare."""

import base64
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

from cnnkit._io import read_json
from cnnkit.data.prepare import load_samples
from cnnkit.errors import ConfigError, CnnkitError, RunError
from cnnkit.evaluation.compare import compare_runs, render_compare_html
from cnnkit.evaluation.evaluate import evaluate_run
from cnnkit.config.commands import DecisionConfig
from cnnkit.evaluation.threshold import store_threshold
from cnnkit.plots import confusion_matrix_png
from cnnkit.evaluation.report import SECTIONS
from cnnkit.inference import Predictor
from cnnkit.run import RunFolder
from tests.conftest import write_image_folder


def split_predictions(run: Path, split: str):
    predictor = Predictor.load(run)
    manifest = RunFolder(run).read_split()
    arrays = load_samples(manifest.root, manifest.splits[split], predictor.classes, predictor.preprocessing)
    return arrays.labels, predictor.predict_arrays(arrays.images)


def test_report_holds_every_section_and_embeds_its_figures(trained_run, tmp_path):
    evaluation = evaluate_run(trained_run, out=tmp_path)
    html = evaluation.report_path.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in html, section
    assert not re.search(r"(href|src)=\"(?!data:)", html) and "http" not in html  # nothing outside the file
    alts = re.findall(r'<img alt="([^"]*)"', html)
    assert alts and not any(a.lower().startswith("no ") for a in alts)  # an alt describes the figure it is on
    assert 'name="viewport"' in html and '<div class="wide"><table' in html  # readable at phone width
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    m = evaluation.metrics
    names = ["confusion_matrix", "roc", *(["mistakes"] if m["worst_mistakes"] else []),
             *(["least_confident"] if m["least_confident_correct"] else []), "training_curves"]
    assert len(embedded) == len(names)
    for name, data in zip(names, embedded):
        assert base64.b64decode(data) == (tmp_path / "figures" / f"{name}.png").read_bytes()
    config = read_json(trained_run / "config.json")
    for text in ("tiny_cnn", f"{evaluation.metrics['parameters']:,}", "Images per split and class", "Most confused"):
        assert text in html, text
    assert f"{sum(config['data']['counts']['test'].values())}" in html


def test_metrics_file_matches_scikit_learn_on_the_test_split(trained_run, tmp_path):
    m = evaluate_run(trained_run, out=tmp_path, report=False).metrics
    y_true, probabilities = split_predictions(trained_run, "test")
    y_pred = probabilities.argmax(1)
    assert m["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=[0, 1, 2]).tolist()
    expected = roc_auc_score(y_true, probabilities, multi_class="ovr", average=None)
    assert [m["auc_per_class"][c] for c in m["classes"]] == pytest.approx(expected)
    losses = -np.log(probabilities[np.arange(len(y_true)), y_true])
    wrong = y_pred != y_true
    assert [w["loss"] for w in m["worst_mistakes"]] == pytest.approx(sorted(losses[wrong], reverse=True)[:16],
                                                                     rel=1e-5)
    assert all(w["true"] != w["predicted"] for w in m["worst_mistakes"])  # mistakes only
    assert [w["loss"] for w in m["least_confident_correct"]] == pytest.approx(
        sorted(losses[~wrong], reverse=True)[:8], rel=1e-5)
    assert all(w["true"] == w["predicted"] for w in m["least_confident_correct"])
    assert not (tmp_path / "report.html").exists()


def test_choose_threshold_uses_validation_and_is_kept_by_the_run(binary_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(binary_run, run)
    store_threshold(run, choose=True)
    evaluation = evaluate_run(run)
    # The same choice made independently with scikit-learn on the validation split.
    y_val, p_val = split_predictions(run, "val")
    fpr, tpr, thresholds = roc_curve(y_val, p_val[:, 1], drop_intermediate=False)
    distance = np.hypot(fpr, 1 - tpr)
    expected = thresholds[np.flatnonzero(distance <= distance.min() + 1e-6)[0]]
    config = read_json(run / "config.json")
    assert config["decision"]["threshold"] == pytest.approx(expected)
    assert "validation" in config["decision"]["source"]
    assert evaluation.metrics["threshold"]["value"] == pytest.approx(expected)

    predictor = Predictor.load(run)
    assert predictor.threshold == pytest.approx(expected)
    y_test, p_test = split_predictions(run, "test")
    y_pred = (p_test[:, 1] >= expected).astype(int)
    assert evaluation.metrics["confusion_matrix"] == confusion_matrix(y_test, y_pred, labels=[0, 1]).tolist()
    in_use = evaluation.metrics["roc_points"][0]
    assert in_use["fpr"] == pytest.approx(y_pred[y_test == 0].mean())
    assert in_use["tpr"] == pytest.approx(y_pred[y_test == 1].mean())


def test_a_set_threshold_changes_predictions(binary_run, binary_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(binary_run, run)
    store_threshold(run, 0.0)
    m = evaluate_run(run, report=False).metrics
    assert m["per_class"]["right"]["recall"] == 1.0 and m["per_class"]["left"]["recall"] == 0.0
    assert {p.label for p in Predictor.load(run).predict([binary_data / "left"])} == {"right"}
    store_threshold(run, 1.0 + 1e-9 - 1e-9)
    m = evaluate_run(run, report=False).metrics
    assert m["threshold"]["source"] == "set by the user"
    with pytest.raises(CnnkitError, match="not both"):
        DecisionConfig(decision_threshold=0.3, choose_threshold=True)
    with pytest.raises(CnnkitError, match="either"):
        store_threshold(run, 0.3, choose=True)


def test_mismatched_classes_fail_or_use_the_shared_ones(trained_run, tmp_path):
    data = write_image_folder(tmp_path / "d", ["left", "right", "cat"], 4, seed=5)  # images the run never saw
    with pytest.raises(CnnkitError, match=r"Missing from the data: \['top'\]; not known to the model: \['cat'\]"):
        evaluate_run(trained_run, data=data, out=tmp_path / "e")
    evaluation = evaluate_run(trained_run, data=data, out=tmp_path / "e", shared_classes=True)
    m = evaluation.metrics
    assert m["n"] == 8 and m["per_class"]["top"]["support"] == 0
    assert m["shared_classes_only"] == {"missing": ["top"], "extra": ["cat"], "left_out": 4}
    assert "shared by model and data only" in evaluation.report_path.read_text()


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_compare_accepts_the_same_test_set_and_refuses_another(trained_run, pattern_data, tmp_path):
    from cnnkit.config import TrainConfig
    from cnnkit.training.fit import train

    same = tmp_path / "same"
    train(pattern_data, same, TrainConfig(model="tiny_cnn", epochs=1, lr=0.01, init="kaiming"), progress=False)
    evaluate_run(same)
    rows = compare_runs([trained_run, same])
    assert [r["run"] for r in rows] == [str(trained_run), str(same)]
    assert rows[0]["accuracy"] == read_json(trained_run / "metrics.json")["accuracy"]
    assert "<table>" in render_compare_html(rows) and str(same) in render_compare_html(rows)
    page = render_compare_html(rows, base=tmp_path)
    links = re.findall(r'<a href="([^"]+)">', page)
    assert [(tmp_path / link).resolve() for link in links] == [(trained_run / "report.html").resolve(),
                                                               (same / "report.html").resolve()]
    assert "Recall per class" in page and page.count("<td>left</td>") == 1

    other_split = tmp_path / "other"
    train(pattern_data, other_split, TrainConfig(model="tiny_cnn", epochs=1, seed=1), progress=False)
    evaluate_run(other_split)
    with pytest.raises(RunError, match="different test sets"):
        compare_runs([trained_run, other_split])
    # Evaluated on one folder, the same two runs become comparable.
    data = write_image_folder(tmp_path / "common", ["left", "right", "top"], 3)
    for run in (trained_run, other_split):
        evaluate_run(run, data=data, out=tmp_path / f"eval-{run.name}", report=False)
    assert len(compare_runs([tmp_path / f"eval-{r.name}" for r in (trained_run, other_split)])) == 2


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_confusion_matrix_figure_grows_with_thirty_classes():
    from PIL import Image
    import io

    small = Image.open(io.BytesIO(confusion_matrix_png(np.eye(3, dtype=int) * 5, list("abc"))))
    rng = np.random.default_rng(0)
    classes = [f"class_{i:02d}" for i in range(30)]
    big = Image.open(io.BytesIO(confusion_matrix_png(rng.integers(0, 20, (30, 30)), classes)))
    assert big.width >= 2.5 * small.width and big.height >= 2.5 * small.height


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_evaluating_a_folder_leaves_out_images_the_run_trained_or_validated_on(trained_run, pattern_data, tmp_path):
    """By path (the run's own folder) and by pixels (a copy under another name): never scored unannounced."""
    from cnnkit.run import RunFolder

    split = RunFolder(trained_run).read_split().splits
    folder = write_image_folder(tmp_path / "mixed", ["left", "right", "top"], 2, seed=11)  # 6 new images
    for rel, label in split["train"][:3] + split["val"][:2]:
        shutil.copy(pattern_data / rel, folder / label / f"copy-{Path(rel).name}")
    evaluation = evaluate_run(trained_run, data=folder, out=tmp_path / "e")
    m = evaluation.metrics
    assert m["n"] == 6 and m["seen_in_training"] == {"train": 3, "val": 2, "included": False, "left_out": 5}
    assert "were left out of the score" in evaluation.report_path.read_text()
    scored_anyway = evaluate_run(trained_run, data=folder, out=tmp_path / "e", include_seen=True)
    assert scored_anyway.metrics["n"] == 11 and "the score is optimistic" in scored_anyway.report_path.read_text()
    # The folder the run came from: exactly its test split is scored, as `cnnkit evaluate RUN` scores it.
    whole_folder = evaluate_run(trained_run, data=pattern_data, out=tmp_path / "all").metrics
    assert whole_folder["n"] == len(split["test"]) == 15
    assert whole_folder["accuracy"] == read_json(trained_run / "metrics.json")["accuracy"]
    seen_only = write_image_folder(tmp_path / "seen", ["left", "right", "top"], 0)
    for rel, label in split["val"]:
        shutil.copy(pattern_data / rel, seen_only / label / Path(rel).name)
    with pytest.raises(CnnkitError, match="Every image of .* was used to train"):
        evaluate_run(trained_run, data=seen_only, out=tmp_path / "v")


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_an_evaluation_folder_is_replaced_whole_and_a_foreign_one_is_refused(trained_run, tmp_path):
    data = write_image_folder(tmp_path / "d", ["left", "right", "top"], 2, seed=12)
    out = tmp_path / "e"
    evaluate_run(trained_run, data=data, out=out)
    (out / "figures" / "stale.png").write_bytes(b"from an earlier evaluation")
    evaluate_run(trained_run, data=data, out=out)
    assert not (out / "figures" / "stale.png").exists() and (out / "report.html").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("never replaced")
    with pytest.raises(CnnkitError, match="not an evaluation folder"):
        evaluate_run(trained_run, data=data, out=tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").exists()


def test_worst_mistakes_are_mistakes_and_the_unsure_correct_ones_are_shown_apart(binary_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(binary_run, run)
    store_threshold(run, 0.97)  # 'right' only when nearly sure: some of them become mistakes
    m = evaluate_run(run).metrics
    confusion = np.array(m["confusion_matrix"])
    errors = int(confusion.sum() - np.trace(confusion))
    assert errors > 0 and len(m["worst_mistakes"]) == min(errors, 16)  # the overlapping classes make some
    assert all(w["true"] != w["predicted"] for w in m["worst_mistakes"])
    assert all(w["true"] == w["predicted"] for w in m["least_confident_correct"])
    assert (run / "figures" / "mistakes.png").exists() and (run / "figures" / "least_confident.png").exists()


def test_a_run_without_a_test_split_gets_a_report_on_validation_that_says_it_is_optimistic(tmp_path):
    from cnnkit.config import TrainConfig
    from cnnkit.evaluation.evaluate import evaluate_test_split
    from cnnkit.training.fit import train
    from tests.conftest import write_image_folder

    data = tmp_path / "data"
    write_image_folder(data / "train", ["a", "b"], 10)
    write_image_folder(data / "val", ["a", "b"], 4, seed=5)
    train(data, tmp_path / "run", TrainConfig(model="tiny_cnn", epochs=1, val_folder="validation"), progress=False)
    evaluation = evaluate_test_split(tmp_path / "run")
    assert evaluation.folder == tmp_path / "run" / "validation-report" and evaluation.metrics["n"] == 8
    assert evaluation.metrics["split"] == "val" and "optimistic" in evaluation.metrics["data"]
    assert "scores its validation split" in evaluation.report_path.read_text()
    assert not (tmp_path / "run" / "metrics.json").exists()  # compare never mistakes it for a test score
    from cnnkit.baselines.fit import train_baseline
    from cnnkit.config import BaselineConfig

    train_baseline(data, tmp_path / "knn", BaselineConfig(method="knn", val_folder="validation"))  # fitted on train+val
    assert evaluate_test_split(tmp_path / "knn") is None
    with pytest.raises(ConfigError, match="split"):
        evaluate_run(tmp_path / "run", split="train")


def test_a_run_another_process_is_writing_is_refused_before_any_image_is_scored(trained_run, tmp_path, monkeypatch):
    import json
    import shutil
    import socket
    import subprocess
    import time

    import cnnkit.evaluation.evaluate as evaluate_module
    from cnnkit.errors import RunError
    from cnnkit.run.lock import LOCK_FILE

    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    writer = subprocess.Popen(["sleep", "60"])
    try:
        (run / LOCK_FILE).write_text(json.dumps({"pid": writer.pid, "host": socket.gethostname(),
                                                 "command": "cnnkit train", "since": time.time()}))
        monkeypatch.setattr(evaluate_module.Predictor, "load", lambda *a, **k: pytest.fail("scored before refusing"))
        with pytest.raises(RunError, match="is being written by process"):
            evaluate_run(run)
        evaluate_module.refuse_if_written(tmp_path)  # a folder nobody writes: no word
    finally:
        writer.kill()
