"""The converged linear head: scikit-learn's LogisticRegression optimum stored as a softmax head, its strength
chosen on validation data only."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cnnkit.models.linear_head import fit_softmax


def features(seed: int, n: int = 240, dim: int = 32, classes: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    y = (x[:, 0] + 0.5 * x[:, 1] + 0.7 * rng.normal(size=n) > 0).astype(int)
    return x, (y + (x[:, 2] > 0.8)) if classes == 3 else y


@pytest.mark.parametrize("classes, C", [(3, 0.01), (3, 1.0), (3, 10.0), (2, 1.0)])
def test_the_head_gives_scikit_learns_probabilities_at_its_optimum(classes, C):
    x, y = features(0, classes=classes)
    fit, _ = fit_softmax(x, y, classes, C)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=10_000, tol=1e-10)).fit(x, y)
    assert fit.converged
    assert np.abs(fit.probabilities(x) - reference.predict_proba(x)).max() < 1e-4


def test_class_weights_are_those_of_scikit_learn_and_an_absent_class_is_never_predicted():
    x, y = features(1)
    y[y == 1] = 2  # class 1 has no training image
    fit, _ = fit_softmax(x, y, 3, 1.0, class_weights=[0.5, 1.0, 3.0])
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=10_000, tol=1e-10,
                                                                   class_weight={0: 0.5, 2: 3.0})).fit(x, y)
    assert np.abs(fit.probabilities(x)[:, [0, 2]] - reference.predict_proba(x)).max() < 1e-4
    assert fit.probabilities(x)[:, 1].max() < 1e-12


def test_a_run_with_a_solved_head_predicts_what_the_solver_found(tmp_path, monkeypatch):
    """Stored as the torch head: predict gives the solver's probabilities on the backbone's features."""
    import timm
    import torch
    from safetensors.torch import save_file

    from cnnkit.config import TrainConfig
    from cnnkit.inference import Predictor
    from cnnkit.run import RunFolder
    from cnnkit.training.fit import train
    from tests.conftest import write_image_folder

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(0)
    weights = tmp_path / "backbone.safetensors"
    save_file(timm.create_model("test_efficientnet", num_classes=0).state_dict(), str(weights))
    data = write_image_folder(tmp_path / "data", ["a", "b", "c"], 10, size=32)
    trained = train(data, tmp_path / "run", TrainConfig(model="test_efficientnet", weights=str(weights),
                                                         image_size=(32, 32)), progress=False)
    solver = trained.result.phases[0].solver
    best = min(solver.grid, key=lambda s: (-s.cv_acc, s.cv_loss))  # the best accuracy, then the lowest loss
    assert solver.method == "lbfgs" and solver.C == best.C
    predictor = Predictor.load(trained.run_dir)
    val = RunFolder(trained.run_dir).load_split("val", predictor.classes, predictor.preprocessing)
    x = torch.from_numpy(val.images).permute(0, 3, 1, 2).float() / 255.0
    from cnnkit.data.preprocess import normalize

    with torch.no_grad():
        pooled = predictor.model.pool(predictor.model.forward_features(normalize(x, predictor.preprocessing)))
        head = predictor.model.classifier
        expected = torch.softmax(pooled @ head.weight.T + head.bias, 1).numpy()
    assert np.allclose(predictor.predict_arrays(val.images), expected, atol=1e-5)
    from cnnkit.feature_cache import cached_features
    from cnnkit.models.linear_head import fit_softmax

    train_split = RunFolder(trained.run_dir).load_split("train", predictor.classes, predictor.preprocessing)
    features = [cached_features(predictor.model, s.images, predictor.preprocessing)[0][:, 0].numpy()
                for s in (train_split, val)]
    refit, _ = fit_softmax(np.concatenate(features), np.concatenate([train_split.labels, val.labels]), 3,
                           solver.C)  # a transfer run's head: C from cross-validation, fitted on train+val
    assert np.allclose(refit.probabilities(features[1]), expected, atol=1e-4)


def test_choose_by_cv_picks_scikit_learns_grid_search_choice():
    """GridSearchCV over the same folds, scored by accuracy and log loss, refitting the highest accuracy with the
    lowest loss among equals (then the stronger penalty): the same choice."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from cnnkit.models.linear_head import C_GRID, choose_by_cv

    x, y = features(3)
    C, scores = choose_by_cv(x, y, 3, folds=4, seed=0)
    tried = [s["C"] for s in scores]
    assert tried == list(C_GRID[:len(tried)])  # strong to weak

    def highest_accuracy_then_lowest_loss(results):
        order = zip(-results["mean_test_accuracy"], -results["mean_test_neg_log_loss"], range(len(tried)))
        return min(order)[2]

    search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, tol=1e-4)),
                          {"logisticregression__C": tried}, scoring=("accuracy", "neg_log_loss"),
                          refit=highest_accuracy_then_lowest_loss,
                          cv=StratifiedKFold(4, shuffle=True, random_state=0)).fit(x, y)
    # the cross-validation's fits stop at scikit-learn's default tolerance, warm-started along the grid: a held-out
    # image may fall the other way near the boundary, never more than one per fold
    fold = len(y) / 4
    assert np.allclose([s["cv_acc"] for s in scores], search.cv_results_["mean_test_accuracy"], atol=1.01 / fold)
    reference = tried[search.best_index_]
    mine = next(s for s in scores if s["C"] == C)
    theirs = next(s for s in scores if s["C"] == reference)
    assert C == reference or abs(mine["cv_acc"] - theirs["cv_acc"]) <= 1.01 / fold / 4  # at most a fit's wobble


def test_a_plateau_is_walked_through_and_equal_accuracies_go_to_the_lower_loss():
    from cnnkit.models.linear_head import best_score, walked_far_enough

    def scores(*pairs):
        return [{"C": 10.0 ** i, "cv_acc": a, "cv_loss": loss} for i, (a, loss) in enumerate(pairs)]

    plateau = scores((0.7, 0.9), (0.8, 0.6), (0.8, 0.5), (0.8, 0.55), (0.8, 0.6))
    assert not walked_far_enough(plateau, 3)  # four equal values: the best may be yet to come
    assert best_score(plateau) == 2  # the lowest loss among the equal accuracies
    falling = scores((0.7, 0.9), (0.8, 0.6), (0.79, 0.6), (0.78, 0.7), (0.75, 0.8))
    assert walked_far_enough(falling, 3) and best_score(falling) == 1
    rising_after = scores((0.7, 0.9), (0.8, 0.6), (0.8, 0.6), (0.8, 0.6), (0.85, 0.5))
    assert not walked_far_enough(rising_after, 3) and best_score(rising_after) == 4


def test_flips_that_change_the_class_are_told_from_flips_that_keep_it():
    from cnnkit.models.linear_head import flips_keep_labels

    x, y = features(5, classes=2)
    keeps = x + 0.1 * np.random.default_rng(1).normal(size=x.shape)  # a photo's mirror: nearly the same features
    swaps = x.copy()
    swaps[:, :2] = -swaps[:, :2]  # a digit's mirror: the features that decide the class turned around
    assert flips_keep_labels(x, keeps, y, 2, 1.0)
    assert not flips_keep_labels(x, swaps, y, 2, 1.0)


def test_the_grid_walk_stops_after_its_patience_and_not_before():
    from cnnkit.models.linear_head import C_GRID, PATIENCE, best_score, choose_by_cv

    x, y = features(4)
    C, scores = choose_by_cv(x, y, 3, folds=3)
    accuracies = [s["cv_acc"] for s in scores]
    assert C == scores[best_score(scores)]["C"] and scores[best_score(scores)]["cv_acc"] == max(accuracies)
    assert len(scores) == len(C_GRID) or all(a < max(accuracies) for a in accuracies[-PATIENCE:])


