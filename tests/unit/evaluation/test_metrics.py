import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from cnnkit.evaluation import metrics as M
from cnnkit.inference import decide


def noisy_predictions(seed: int, n: int = 200, k: int = 4):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    probabilities = rng.dirichlet(np.ones(k), n)
    probabilities[np.arange(n), y_true] += rng.random(n) * 0.6  # better than chance, not perfect
    return y_true, probabilities / probabilities.sum(1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_scikit_learn(seed: int):
    classes = ["a", "b", "c", "d"]
    y_true, probabilities = noisy_predictions(seed)
    y_pred = probabilities.argmax(1)
    m = M.classification_metrics(y_true, y_pred, classes)
    assert m["n"] == 200 and m["classes"] == classes
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert np.array_equal(m["confusion_matrix"], confusion_matrix(y_true, y_pred, labels=range(4)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)
    for i, c in enumerate(classes):
        assert m["per_class"][c] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
    assert m["macro_f1"] == pytest.approx(f.mean())


def test_row_normalised_matrix_matches_scikit_learn():
    y_true, probabilities = noisy_predictions(3)
    y_pred = probabilities.argmax(1)
    counts = M.confusion_matrix(y_true, y_pred, 4)
    expected = 100 * confusion_matrix(y_true, y_pred, labels=range(4), normalize="true")
    assert np.allclose(M.row_normalized(counts), expected)
    assert np.allclose(M.row_normalized(counts).sum(1), 100)
    assert np.array_equal(M.row_normalized(np.array([[0, 0], [1, 3]])), [[0, 0], [25, 75]])  # empty row stays 0


def test_class_never_predicted_has_zero_precision():
    m = M.classification_metrics(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]), ["x", "y"])
    assert m["per_class"]["y"]["precision"] == 1.0 and m["per_class"]["y"]["recall"] == 0.5
    assert m["confusion_matrix"] == [[2, 0], [1, 1]]


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_roc_and_auc_match_scikit_learn(seed: int):
    y_true, probabilities = noisy_predictions(seed, k=2)
    curves = M.roc_curves(y_true, probabilities, ["neg", "pos"])
    assert list(curves) == ["pos"]
    curve = curves["pos"]
    fpr, tpr, thresholds = roc_curve(y_true, probabilities[:, 1], drop_intermediate=False)
    assert np.allclose(curve.fpr, fpr) and np.allclose(curve.tpr, tpr)
    assert np.allclose(curve.thresholds, thresholds) and np.isinf(curve.thresholds[0])
    assert curve.auc == pytest.approx(roc_auc_score(y_true, probabilities[:, 1]))
    assert M.auc_summary(curves) == {"auc": pytest.approx(roc_auc_score(y_true, probabilities[:, 1]))}


def test_one_vs_rest_aucs_match_scikit_learn():
    y_true, probabilities = noisy_predictions(5)
    summary = M.auc_summary(M.roc_curves(y_true, probabilities, list("abcd")))
    expected = roc_auc_score(y_true, probabilities, multi_class="ovr", average=None)
    assert [summary["auc_per_class"][c] for c in "abcd"] == pytest.approx(expected)
    assert summary["auc"] == pytest.approx(roc_auc_score(y_true, probabilities, multi_class="ovr", average="macro"))


def test_auc_is_undefined_without_negatives():
    assert M.roc_curve(np.array([0.2, 0.9]), np.array([True, True])).auc is None


def test_threshold_closest_to_the_corner_on_a_hand_made_case():
    # Scores and labels drawn so that the ROC points are, by threshold:
    # 0.9 -> (0, 1/3); 0.7 -> (0, 2/3); 0.6 -> (1/3, 2/3); 0.4 -> (1/3, 1); 0.2 -> (2/3, 1); 0.1 -> (1, 1).
    # Distances to (0, 1): 0.667, 0.333, 0.471, 0.333, 0.667, 1: a tie between 0.7 and 0.4; the higher one wins.
    scores = np.array([0.9, 0.7, 0.6, 0.4, 0.2, 0.1])
    positive = np.array([True, True, False, True, False, False])
    curve = M.roc_curve(scores, positive)
    assert M.closest_to_corner(curve) == pytest.approx(0.7)
    # Moving one negative below the positive at 0.4 makes (0, 1) itself reachable at 0.4.
    curve = M.roc_curve(np.array([0.9, 0.7, 0.3, 0.4, 0.2, 0.1]), positive)
    assert M.closest_to_corner(curve) == pytest.approx(0.4)
    assert curve.point(0.4, np.array([0.9, 0.7, 0.3, 0.4, 0.2, 0.1]), positive) == (0.0, 1.0)


def test_decide_with_a_threshold():
    probabilities = np.array([[0.7, 0.3], [0.4, 0.6], [0.8, 0.2]])
    assert decide(probabilities).tolist() == [0, 1, 0]
    assert decide(probabilities, 0.25).tolist() == [1, 1, 0]
    assert decide(probabilities, 0.2).tolist() == [1, 1, 1]  # at least the threshold
    with pytest.raises(Exception, match=r"in \[0, 1\]"):
        decide(probabilities, 1.5)
    with pytest.raises(Exception, match="two classes"):
        decide(np.ones((2, 3)) / 3, 0.5)


def test_losses_and_most_confused():
    y_true = np.array([0, 1, 1, 2])
    probabilities = np.array([[0.9, 0.05, 0.05], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1]])
    assert M.losses(y_true, probabilities) == pytest.approx(-np.log([0.9, 0.2, 0.8, 0.1]))
    matrix = np.array([[5, 0, 1], [3, 4, 0], [1, 3, 2]])
    assert M.most_confused(matrix, ["a", "b", "c"], limit=3) == [
        {"true": "b", "predicted": "a", "count": 3}, {"true": "c", "predicted": "b", "count": 3},
        {"true": "a", "predicted": "c", "count": 1}]


def test_more_epochs_are_suggested_only_while_the_validation_loss_still_falls_clearly():
    from cnnkit.evaluation.history import still_improving

    flat_end = [1.0, 0.6, 0.45, 0.4, 0.39, 0.385, 0.384, 0.383]  # best last, as a cosine schedule ends
    falling = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    assert not still_improving({"val_loss": flat_end})
    assert still_improving({"val_loss": falling})
    assert not still_improving({"val_loss": [1.0, 0.5]})  # too few epochs to say
    assert not still_improving({})
