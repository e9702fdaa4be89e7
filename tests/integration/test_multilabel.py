"""Multi-label classification end to end: a CSV with labels such as ``a|b`` trains sigmoid outputs with binary
cross-entropy, chooses a threshold per class on validation, and evaluates, reports, predicts and exports with them."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnkit.cli import main
from cnnkit.data.builtin import export_dataset, training_path
from cnnkit.data.files import scan_folder
from cnnkit.data.prepare import prepare_training_data
from cnnkit.errors import CnnkitError, ConfigError
from cnnkit.evaluation.metrics import multilabel_metrics
from cnnkit.inference import Predictor
from cnnkit.training.thresholds import best_f1_threshold


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """The built-in multi-label wafers, 6 images per label set (120 images, 20 label sets, 6 labels)."""
    folder = tmp_path_factory.mktemp("mixed") / "data"
    export_dataset("wafers-mixed", folder, size=6)
    return training_path("wafers-mixed", folder)


@pytest.fixture(scope="module")
def run(mixed, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "ml"
    assert main(["-q", "train", str(mixed), "--model", "simple_cnn", "--epochs", "3", "--no-progress",
                 "--out", str(out)]) == 0
    return out


def test_the_builtin_set_is_a_multi_label_csv_with_images_without_labels(mixed):
    rows = list(csv.DictReader(open(mixed)))
    assert len(rows) == 120 and sum(r["label"] == "" for r in rows) == 6 and sum("|" in r["label"] for r in rows) == 78
    scan = scan_folder(mixed)
    assert scan.multi_label and scan.classes == ("Center", "Donut", "Edge-Loc", "Edge-Ring", "Loc", "Scratch")


def test_labels_become_rows_of_zeros_and_ones_and_every_label_set_is_split(mixed):
    prepared = prepare_training_data(mixed, seed=0)
    train = prepared.splits["train"]
    assert train.labels.shape == (len(train), 6) and set(np.unique(train.labels)) <= {0.0, 1.0}
    names = dict(prepared.manifest.splits["train"])
    for path, row in zip(train.paths, train.labels):
        expected = set(filter(None, names[path].split("|")))
        assert {c for c, v in zip(prepared.classes, row) if v} == expected
    for split in ("val", "test"):  # stratified by label set: with 6 images each, every set reaches val and test
        assert len({c for _, c in prepared.manifest.splits[split]}) == 20


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_training_stores_a_threshold_per_class_chosen_on_validation(run):
    record = json.loads((run / "config.json").read_text())
    assert record["multi_label"] is True
    per_class = record["label_thresholds"]["per_class"]
    assert list(per_class) == record["classes"] and all(0 < t < 1 for t in per_class.values())
    assert "validation" in record["label_thresholds"]["source"]
    # the stored thresholds are the best-F1 ones on the validation split with the kept weights
    predictor = Predictor.load(run, backend="torch")
    from cnnkit.run import RunFolder

    val = RunFolder(run).load_split("val", predictor.classes, predictor.preprocessing, multi_label=True)
    probabilities = predictor.predict_arrays(val.images)
    for k, c in enumerate(record["classes"]):
        assert per_class[c] == pytest.approx(best_f1_threshold(probabilities[:, k], val.labels[:, k] > 0.5), abs=1e-6)


def test_probabilities_are_one_sigmoid_per_class(run, mixed):
    predictor = Predictor.load(run, backend="torch")
    probabilities = predictor.predict_proba(sorted((mixed.parent / "images").glob("*.png"))[:30])
    assert probabilities.shape == (30, 6)
    assert not np.allclose(probabilities.sum(1), 1.0, atol=1e-3)  # a softmax would sum to 1
    network = predictor.model
    images = predictor.load_images(sorted((mixed.parent / "images").glob("*.png"))[:4])
    from cnnkit.data.preprocess import normalize

    x = normalize(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, predictor.preprocessing)
    with torch.no_grad():
        expected = torch.sigmoid(network(x)).numpy()
    np.testing.assert_allclose(predictor.predict_arrays(images), expected, atol=1e-6)


def test_predict_and_evaluate_agree_on_the_test_split(run, tmp_path):
    """The rows `predict` writes, with the stored thresholds, give the scores `evaluate` wrote for the test split."""
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["multi_label"] and metrics["split"] == "test"
    split = json.loads((run / "split.json").read_text())
    root = Path(split["root"]) if Path(split["root"]).is_absolute() else run / split["root"]
    files = [str(root / p) for p, _ in split["splits"]["test"]]
    truth = {str(root / p): set(filter(None, c.split("|"))) for p, c in split["splits"]["test"]}
    out = tmp_path / "preds.csv"
    assert main(["-q", "predict", str(run), *files, "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out)))
    predicted = {r["path"]: set(filter(None, r["labels"].split("|"))) for r in rows}
    assert len(rows) == metrics["n"] == len(files)
    assert np.mean([predicted[f] == truth[f] for f in files]) == pytest.approx(metrics["accuracy"])
    thresholds = json.loads((run / "config.json").read_text())["label_thresholds"]["per_class"]
    for r in rows:  # the label column is each class whose probability reaches its threshold
        assert predicted[r["path"]] == {c for c, t in thresholds.items() if float(r[c]) >= t - 5e-7}
    # scikit-learn's scores of the same decisions
    classes = metrics["classes"]
    y = np.array([[c in truth[f] for c in classes] for f in files], float)
    p = np.array([[float(r[c]) for c in classes] for r in sorted(rows, key=lambda r: files.index(r["path"]))])
    again = multilabel_metrics(y, p >= np.array([thresholds[c] for c in classes]), p, classes)
    for key in ("samples_f1", "micro_f1", "macro_f1", "hamming_loss"):
        assert again[key] == pytest.approx(metrics[key], abs=1e-4)


def test_the_report_scores_each_class_with_its_threshold(run):
    html = (run / "report.html").read_text()
    assert "Errors per class" in html and "Confusion matrix" not in html
    assert "its own threshold" in html and "samples F1" in html
    metrics = json.loads((run / "metrics.json").read_text())
    for row in metrics["worst_mistakes"]:  # every listed mistake has a wrong label set
        assert row["true"] != row["predicted"]


def test_the_api_gives_the_cli_probabilities_and_label_sets(run, mixed):
    from cnnkit import ImageClassifier

    files = [str(p) for p in sorted((mixed.parent / "images").glob("*.png"))[:8]]
    classifier = ImageClassifier.load(run)
    predictor = Predictor.load(run, backend="torch")
    np.testing.assert_allclose(classifier.predict_proba(files), predictor.predict_proba(files), atol=1e-6)
    labels = classifier.predict(files)
    assert classifier.score(files, labels) == 1.0
    assert classifier.score(files, [label.split("|") if label else [] for label in labels]) == 1.0


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_the_export_keeps_the_sigmoid(run):
    pytest.importorskip("onnxruntime")
    from cnnkit.export.run import export_run

    result = export_run(run)
    assert result.max_difference <= 1e-4
    onnx = Predictor.load(run, backend="onnx")
    assert onnx.multi_label and onnx.thresholds == pytest.approx(Predictor.load(run, backend="torch").thresholds)


@pytest.mark.parametrize("argv, message", [
    (["train", "{data}", "--balance", "weights", "--out", "{tmp}/b"], "`balance`|--balance"),
    (["baseline", "{data}", "--method", "knn", "--out", "{tmp}/c"], "multi-label"),
    (["evaluate", "{run}", "--choose-threshold"], "multi-label"),
    (["evaluate", "{run}", "--knn", "3"], "multi-label"),
])
def test_what_assumes_one_class_per_image_is_refused_in_one_line(argv, message, run, mixed, tmp_path, capsys):
    args = [a.format(data=mixed, run=run, tmp=tmp_path) for a in argv]
    assert main(["-q", *args]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    import re

    assert re.search(message, err[0])


@pytest.mark.parametrize("command", ["train", "lr-find"])
@pytest.mark.parametrize("flag", ["--balance", "--unlabelled"])
def test_one_class_settings_are_refused_in_one_line_before_the_model_is_chosen_or_an_image_decoded(
        command, flag, mixed, tmp_path, capsys):
    """Without -q: the refusal is all stderr says (no "Model: ..." or "Decoding ..." line before it), and no run
    folder is made."""
    pool = tmp_path / "pool"
    pool.mkdir()
    shutil.copy(next(mixed.parent.rglob("*.png")), pool / "new.png")
    value = {"--balance": "weights", "--unlabelled": str(pool)}[flag]
    assert main([command, str(mixed), flag, value, "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and "multi-label" in err[0] and "Traceback" not in err[0], err
    assert not (tmp_path / "out").exists()


def test_a_model_that_is_not_multi_label_refuses_multi_label_data(mixed, tmp_path):
    from cnnkit.data.prepare import load_folder

    predictor_classes = ["Center", "Donut"]
    with pytest.raises(CnnkitError, match="multi-label"):
        load_folder(mixed, predictor_classes, prepare_training_data(mixed).preprocessing)


def test_scores_by_hand():
    classes = ["a", "b", "c"]
    truth = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 1, 1]], float)
    decided = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 1]], bool)
    p = np.where(decided, 0.9, 0.1)
    m = multilabel_metrics(truth, decided, p, classes)
    assert m["accuracy"] == 0.75  # image 2 misses b
    assert m["hamming_loss"] == pytest.approx(1 / 12)
    assert m["per_class"]["b"]["recall"] == 0.5 and m["per_class"]["b"]["false_negatives"] == 1
    # samples F1: 1, 2/3, 1 (nothing to find, nothing found), 1
    assert m["samples_f1"] == pytest.approx((1 + 2 / 3 + 1 + 1) / 4)
    assert m["micro_f1"] == pytest.approx(2 * 4 / (2 * 4 + 0 + 1))


@pytest.mark.parametrize("seed", range(5))
def test_the_chosen_threshold_reaches_the_best_f1_of_any_threshold(seed):
    rng = np.random.default_rng(seed)
    positive = rng.random(40) < 0.3
    scores = np.round(np.clip(positive * 0.3 + rng.random(40) * 0.7, 0, 1), 2)  # ties on purpose

    def f1(t):
        chosen = scores >= t
        tp = (chosen & positive).sum()
        return 2 * tp / (chosen.sum() + positive.sum())

    best = max(f1(t) for t in np.unique(np.append(scores, 1.01)))
    chosen = best_f1_threshold(scores, positive)
    assert f1(chosen) == pytest.approx(best)
    assert not np.isin(chosen, scores) or chosen == 0.5  # midway between scores, never on one


def test_mixup_mixes_label_rows_as_they_are():
    from cnnkit.augment.mixing import mix_batch

    torch.manual_seed(0)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    _, targets, lam = mix_batch(torch.rand(2, 1, 8, 8), labels, 3, mixup=0.4)
    assert targets.shape == (2, 3)
    assert torch.allclose(targets.sum(0), labels.sum(0))  # each row's mass moves to its partner, none is lost
    assert torch.allclose(targets[0] + targets[1], labels[0] + labels[1])


def test_a_balance_setting_is_refused_before_training(mixed, tmp_path):
    from cnnkit.training.fit import train

    with pytest.raises(ConfigError, match="balance"):
        train(mixed, tmp_path / "r", balance="oversample")
