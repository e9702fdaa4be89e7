import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support

from cnnkit.evaluation.metrics import classification_metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_scikit_learn(seed: int):
    rng = np.random.default_rng(seed)
    classes = ["a", "b", "c", "d"]
    y_true = rng.integers(0, 4, 200)
    probabilities = rng.dirichlet(np.ones(4), 200)
    probabilities[np.arange(200), y_true] += rng.random(200) * 0.6  # better than chance, not perfect
    y_pred = probabilities.argmax(1)
    m = classification_metrics(y_true, probabilities, classes)
    assert m["n"] == 200 and m["classes"] == classes
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert np.array_equal(m["confusion_matrix"], confusion_matrix(y_true, y_pred, labels=range(4)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)
    for i, c in enumerate(classes):
        assert m["per_class"][c] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
    assert m["macro_f1"] == pytest.approx(f.mean())


def test_class_never_predicted_has_zero_precision():
    m = classification_metrics(np.array([0, 0, 1, 1]), np.array([[1, 0], [1, 0], [1, 0], [0, 1.0]]), ["x", "y"])
    assert m["per_class"]["y"]["precision"] == 1.0 and m["per_class"]["y"]["recall"] == 0.5
    assert m["confusion_matrix"] == [[2, 0], [1, 1]]
