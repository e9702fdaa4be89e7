"""Classical baselines: the same split as a CNN, cross-validation on train+val only, scikit-learn's results."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from cnnkit._io import read_json
from cnnkit.baselines import fit as baseline_fit
from cnnkit.baselines.handcrafted import handcrafted_features, pixel_features
from cnnkit.baselines.fit import train_baseline
from cnnkit.evaluation.compare import compare_runs
from cnnkit.evaluation.evaluate import evaluate_run
from cnnkit.inference import Predictor
from cnnkit.run import RunFolder


def splits(run):
    predictor = Predictor.load(run)
    return predictor, [RunFolder(run).load_split(s, predictor.classes, predictor.preprocessing)
                       for s in ("train", "val", "test")]


@pytest.fixture(scope="module")
def knn_run(tmp_path_factory, pattern_data):
    run = train_baseline(pattern_data, tmp_path_factory.mktemp("b") / "knn", method="knn").run_dir
    evaluate_run(run)
    return run


def test_knn_baseline_equals_scikit_learn(knn_run):
    predictor, (train, val, test) = splits(knn_run)
    params = read_json(knn_run / "config.json")["model"]["params"]
    reference = KNeighborsClassifier(params["k"], p=params["p"]).fit(
        pixel_features(np.concatenate([train.images, val.images])), np.concatenate([train.labels, val.labels]))
    expected = reference.predict_proba(pixel_features(test.images))
    assert np.allclose(predictor.predict_arrays(test.images), expected)
    metrics = read_json(knn_run / "metrics.json")
    assert metrics["accuracy"] == pytest.approx((expected.argmax(1) == test.labels).mean())


def test_cross_validation_never_sees_the_test_split(pattern_data, tmp_path, monkeypatch):
    seen = {}
    original = baseline_fit.cross_validate

    def spy(method, x, y, folds, seed):
        seen["x"] = x
        return original(method, x, y, folds, seed)

    monkeypatch.setattr(baseline_fit, "cross_validate", spy)
    run = train_baseline(pattern_data, tmp_path / "lin", method="linear").run_dir
    _, (train, val, test) = splits(run)
    rows = {row.tobytes() for row in seen["x"]}
    assert rows == {row.tobytes() for row in pixel_features(np.concatenate([train.images, val.images]))}
    assert not rows & {row.tobytes() for row in pixel_features(test.images)}
    cv = read_json(run / "config.json")["cross_validation"]
    assert cv["samples"] == len(train) + len(val) and cv["best"]["C"] in baseline_fit.C_GRID


def test_linear_baseline_is_a_softmax_equal_to_scikit_learn(pattern_data, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="cnnkit")
    run = train_baseline(pattern_data, tmp_path / "lin", method="linear").run_dir
    chosen = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Cross-validation")]
    assert chosen and "best C=" in chosen[0] and "{" not in chosen[0]  # read by people, not a Python dict
    predictor, (train, val, test) = splits(run)
    c = read_json(run / "config.json")["model"]["params"]["C"]
    reference = LogisticRegression(C=c, max_iter=1000, tol=1e-3, random_state=0).fit(
        pixel_features(np.concatenate([train.images, val.images])), np.concatenate([train.labels, val.labels]))
    assert np.allclose(predictor.predict_arrays(test.images), reference.predict_proba(pixel_features(test.images)),
                       atol=1e-4)


def test_handcrafted_features_see_regions():
    images = np.zeros((2, 32, 32, 1), np.uint8)
    images[0, 8:24, 8:24] = 255  # a 16x16 square: a quarter of the image
    images[1, :, :16] = 255
    features = handcrafted_features(images)
    assert features.shape[0] == 2 and np.isfinite(features).all()
    assert np.array_equal(features, handcrafted_features(images))
    area = features[:, -9]  # the region block: area, perimeter, centroid y, centroid x, moments
    assert area == pytest.approx([0.25, 0.5])
    assert features[0, -7] == pytest.approx(15.5 / 32) and features[1, -6] == pytest.approx(7.5 / 32)
    eta = (16 ** 2 - 1) / 12 / 256  # a 16x16 square: eta20 = eta02 = (n^2 - 1) / 12 / n^2, eta11 = 0
    assert features[0, -5:-2] == pytest.approx([eta, eta, 0.0], abs=1e-6)
    assert features[0, -2] == pytest.approx(2 * eta, abs=1e-6)  # Hu's first invariant, eta20 + eta02
    assert features[0, -8] == pytest.approx(60 / 32, rel=0.1)  # the square's outline, about 4 x 15 pixels


def test_a_baseline_run_is_evaluated_and_compared_like_a_cnn_run(knn_run, trained_run):
    report = (knn_run / "report.html").read_text()
    assert "cross-validation" in report and "the test split was not used" in report
    rows = compare_runs([knn_run, trained_run])  # same folder, seed and fractions: the same test split
    assert [r["model"] for r in rows] == ["baseline-knn", "tiny_cnn"]


def test_baseline_command(pattern_data, tmp_path, capsys):
    from cnnkit.cli import main

    assert main(["baseline", str(pattern_data), "--method", "handcrafted", "--out", str(tmp_path / "h")]) == 0
    out = capsys.readouterr().out
    assert "CV accuracy" in out and "Test" in out and (tmp_path / "h" / "model.safetensors").exists()
    assert main(["predict", str(tmp_path / "h"), str(pattern_data / "left")]) == 0
    assert main(["evaluate", str(tmp_path / "h"), "--tta", "2"]) == 1  # no TTA for baselines: a clear error
    photo = sorted((pattern_data / "left").glob("*.png"))[0]
    assert main(["scan", str(tmp_path / "h"), str(photo), "--out", str(tmp_path / "scan")]) == 1
    assert "scanning needs a CNN patch classifier" in capsys.readouterr().err


@pytest.mark.slow
def test_the_probe_is_a_cross_validated_logistic_regression_on_frozen_features(tmp_path, monkeypatch):
    """cnnkit baseline --method probe: the reference a transfer run must match, on the same split, comparable."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from cnnkit.config import BaselineConfig, TrainConfig
    from cnnkit.feature_cache import cached_features
    from cnnkit.models.linear_head import C_GRID
    from cnnkit.training.fit import train
    from tests.conftest import write_image_folder

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    data = write_image_folder(tmp_path / "data", ["left", "right", "top"], 12, size=40)
    probe = train_baseline(data, tmp_path / "probe", BaselineConfig(method="probe", image_size=(64, 64),
                                                                    folds=3)).run_dir
    predictor, (train_split, val, test) = splits(probe)
    model = predictor.model
    features = [cached_features(model, s.images, predictor.preprocessing)[0][:, 0].numpy() for s in (train_split, val,
                                                                                                    test)]
    x, y = np.concatenate(features[:2]), np.concatenate([train_split.labels, val.labels])
    cv = read_json(probe / "config.json")["cross_validation"]
    tried = list(C_GRID[:cv["candidates"]])

    def highest_accuracy_then_lowest_loss(results):  # cnnkit's choice among equal accuracies
        return min(zip(-results["mean_test_accuracy"], -results["mean_test_neg_log_loss"], range(len(tried))))[2]

    search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, tol=1e-8)),
                          {"logisticregression__C": tried}, scoring=("accuracy", "neg_log_loss"),
                          refit=highest_accuracy_then_lowest_loss,
                          cv=StratifiedKFold(3, shuffle=True, random_state=0)).fit(x, y)
    assert cv["best"]["C"] == search.best_params_["logisticregression__C"]
    assert np.allclose(predictor.predict_arrays(test.images), search.predict_proba(features[2]), atol=1e-3)  # solver tol
    evaluate_run(probe)
    transfer = train(data, tmp_path / "transfer", TrainConfig(model="efficientnet_lite0", pretrained=True,
                                                              image_size=(64, 64)), progress=False).run_dir
    evaluate_run(transfer)
    assert len(compare_runs([probe, transfer])) == 2  # the same split, so the same test set
    assert "logistic regression on frozen features" in (probe / "report.html").read_text()


def test_a_stored_threshold_decides_a_baseline_s_predictions_too(binary_data, tmp_path):
    from cnnkit.evaluation.threshold import store_threshold
    from cnnkit.inference import Predictor

    run = train_baseline(binary_data, tmp_path / "lin", method="linear").run_dir
    images = sorted(binary_data.rglob("*.png"))[:20]
    probabilities = Predictor.load(run).predict_proba(images)
    store_threshold(run, 0.99)  # 'right' only when nearly sure
    labels = [p.label for p in Predictor.load(run).predict(images)]
    assert labels == ["right" if p[1] >= 0.99 else "left" for p in probabilities]
