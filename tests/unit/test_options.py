"""Every option is declared once (cnnkit.config): the command line and the Python API are generated from that
declaration, and these tests prove that they agree."""

from __future__ import annotations

import argparse
import dataclasses
import inspect

import pytest

from cnnkit import config as C
from cnnkit.cli import build_parser
from cnnkit.cli.options import settings, to_flags
from cnnkit.errors import ConfigError
from cnnkit.options import default_of, options_of

# command -> (declarations it offers, the API function that takes them)
COMMANDS = {
    "train": [C.TrainConfig], "demo": [C.TrainConfig], "baseline": [C.BaselineConfig], "predict": [C.PredictConfig],
    "evaluate": [C.DecisionConfig, C.EvaluateConfig], "similar": [C.SearchConfig], "tsne": [C.TsneConfig],
    "augment-preview": [C.PreviewConfig], "scan": [C.ScanConfig], "export": [C.ExportConfig],
    "patches": [C.PatchConfig], "lr-find": [C.LrFindConfig], "points": [C.PointsConfig],
    "suggest": [C.SuggestConfig],
}


def api_functions():
    from cnnkit.augment.preview import augment_preview
    from cnnkit.baselines.fit import train_baseline
    from cnnkit.evaluation.evaluate import evaluate_run
    from cnnkit.export.run import export_run
    from cnnkit.latent.similar import similar
    from cnnkit.latent.tsne import run_tsne
    from cnnkit.scan.photo import scan_photo
    from cnnkit.suggest import suggest
    from cnnkit.training.fit import train
    from cnnkit.training.lr_find import lr_find
    from cnnkit.training.points import train_points

    return {C.TrainConfig: train, C.BaselineConfig: train_baseline, C.EvaluateConfig: evaluate_run,
            C.SearchConfig: similar, C.TsneConfig: run_tsne, C.PreviewConfig: augment_preview, C.ScanConfig: scan_photo,
            C.ExportConfig: export_run, C.LrFindConfig: lr_find, C.PointsConfig: train_points,
            C.SuggestConfig: suggest}


def subparser(command: str) -> argparse.ArgumentParser:
    actions = build_parser()._subparsers._group_actions[0]
    return actions.choices[command]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_command_line_offers_every_declared_option_as_declared(command):
    actions = {a.dest: a for a in subparser(command)._actions}
    for cls in COMMANDS[command]:
        for name, (field, declared) in options_of(cls).items():
            action = actions[name]
            assert declared.flag_for(name) in action.option_strings
            assert declared.help in action.help
            if declared.choices is not None:
                assert list(action.choices) == [c for c in declared.choices if c is not None]
            if action.default is not argparse.SUPPRESS:  # a command's own default, said in its help
                assert f"(default: {action.default})" in action.help


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"demo"}))
def test_without_flags_the_command_line_gives_the_declared_defaults(command):
    positional = {"train": ["data"], "baseline": ["data", "--method", "knn"], "predict": ["run", "x.png"], "evaluate": ["run"],
                  "similar": ["run", "q.png"], "tsne": ["run"], "augment-preview": ["data", "--augment", "flip"],
                  "scan": ["run", "photo.jpg", "--out", "o"], "export": ["run"],
                  "patches": ["photo.jpg", "--dots", "d.csv", "--out", "o"],
                  "lr-find": ["data", "--out", "o"], "points": ["photo.jpg", "--dots", "d.csv", "--out", "o"],
                  "suggest": ["run", "pool"]}[command]
    args = build_parser().parse_args([command, *positional])
    for cls in COMMANDS[command]:
        assert settings(args, cls) == cls()


def test_a_bad_value_is_a_usage_error_naming_the_flag(capsys):
    for argv in (["train", "d", "--image-size", "abc"], ["train", "d", "--option", "foo"]):
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args(argv)
        assert exit_.value.code == 2 and f"argument {argv[2]}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["baseline", "d"])  # the method is required on the command line
    assert "--method" in capsys.readouterr().err


def test_derived_settings_follow_what_they_derive_from():
    assert C.TrainConfig(lr=0.1).replace(lr=0.01).finetune_lr == pytest.approx(0.001)
    assert C.TrainConfig(pretrained=True).replace(pretrained=False).strategy == "scratch"
    assert C.TrainConfig(finetune_lr=0.5).replace(lr=0.01).finetune_lr == 0.5  # given, so kept


def test_flags_reach_the_settings():
    args = build_parser().parse_args(
        ["train", "data", "--lr", "0.05", "--image-size", "24x32", "--option", "filters=8,16", "--option",
         "hidden=0", "--no-cache", "--skip-bad", "--optimizer", "sgd", "--channels", "1"])
    config = settings(args, C.TrainConfig)
    assert (config.lr, config.image_size, config.optimizer, config.channels) == (0.05, (24, 32), "sgd", 1)
    assert config.model_options == {"filters": (8, 16), "hidden": 0}
    assert config.feature_cache is False and config.skip_bad is True
    scan = settings(build_parser().parse_args(["scan", "r", "p", "--out", "o", "--ignore", "a", "--ignore", "b"]),
                    C.ScanConfig)
    assert scan.ignore == ("a", "b")


@pytest.mark.parametrize("cls", [C.TrainConfig, C.BaselineConfig, C.EvaluateConfig, C.SearchConfig, C.TsneConfig,
                                 C.PreviewConfig, C.ScanConfig, C.ExportConfig, C.LrFindConfig, C.SuggestConfig],
                         ids=lambda c: c.__name__)
def test_the_python_api_takes_every_option_with_its_declared_default(cls):
    signature = inspect.signature(api_functions()[cls])
    for field in dataclasses.fields(cls):
        assert signature.parameters[field.name].default == default_of(field)


def test_the_classifier_signature_is_the_declaration_and_clone_works():
    from sklearn.base import clone

    from cnnkit import ImageClassifier

    parameters = inspect.signature(ImageClassifier).parameters
    assert list(parameters) == ["model"] + [f.name for f in dataclasses.fields(C.TrainConfig) if f.name != "model"]
    assert all(parameters[f.name].default == default_of(f) for f in dataclasses.fields(C.TrainConfig))
    classifier = ImageClassifier("tiny_cnn", epochs=3, lr=0.05)
    copy = clone(classifier)
    assert copy.get_params() == classifier.get_params() and copy is not classifier
    assert copy.set_params(lr=0.1).config.lr == 0.1


def test_declared_values_are_checked_when_the_settings_are_made():
    with pytest.raises(ConfigError, match="'init' parameter of TrainConfig must be one of"):
        C.TrainConfig(init="he")
    with pytest.raises(ConfigError, match="'accelerator' parameter"):
        C.TrainConfig(accelerator="abacus")
    for bad in ({"lr": float("nan")}, {"seed": -1}, {"epochs": 0}, {"val_fraction": 1.0}, {"mixup": -1}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            C.TrainConfig(**bad)
    for cls, bad in ((C.ScanConfig, {"stride": -4}), (C.ScanConfig, {"tile": 0}), (C.ScanConfig, {"detection_threshold": -1}),
                     (C.SearchConfig, {"k": 0}), (C.BaselineConfig, {"folds": 1}), (C.EvaluateConfig, {"tta": 0})):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            cls(**bad)


def test_the_command_line_names_flags_where_the_library_names_parameters():
    assert to_flags("Expected `lr` > 0. Received: lr=nan") == "Expected --lr > 0. Received: lr=nan"
    assert to_flags("set `feature_cache` or `cache_views`") == "set --no-cache or --cache-views"
    assert to_flags("The 'optimizer' parameter of TrainConfig must be one of {'adam'}.") == (
        "The --optimizer option must be one of {'adam'}.")
    assert to_flags("`cnnkit` stays") == "`cnnkit` stays"


def test_settings_are_recorded_and_read_back_alike():
    config = C.TrainConfig(model="tiny_cnn", image_size=(24, 24), model_options={"filters": (8,)}, augment="flip")
    assert C.TrainConfig.from_dict(config.to_dict()) == config


RENAMED = [  # (command, settings class, old name, new name, value given): one meaning per name
    (["evaluate", "run"], C.DecisionConfig, "threshold", "decision_threshold", "0.4"),
    (["scan", "run", "photo.png"], C.ScanConfig, "threshold", "detection_threshold", "0.4"),
    (["scan", "run", "photo.png"], C.ScanConfig, "method", "mode", "sliding"),
    (["anomaly", "run", "img.png"], C.AnomalyConfig, "threshold", "anomaly_threshold", "0.4"),
    (["inspect", "run", "img.png"], C.InspectConfig, "channels", "maps_per_stage", "4"),
    (["inspect", "run", "img.png"], C.InspectConfig, "steps", "ig_steps", "16"),
    (["lr-find", "data"], C.LrFindConfig, "steps", "batches", "20"),
    (["points", "photo.png", "--dots", "d.csv"], C.PointsConfig, "steps", "steps_per_epoch", "20"),
    (["points", "photo.png", "--dots", "d.csv"], C.PointsConfig, "threshold", "detection_threshold", "0.4"),
]


@pytest.mark.parametrize("command, cls, old, new, value", RENAMED, ids=lambda v: v if isinstance(v, str) else None)
def test_an_old_flag_still_works_for_a_release_and_says_the_new_one(command, cls, old, new, value, capsys):
    flag, old_flag = "--" + new.replace("_", "-"), "--" + old.replace("_", "-")
    given = settings(build_parser().parse_args([*command, old_flag, value]), cls)
    assert f"{old_flag} is now {flag}" in capsys.readouterr().err
    assert given == settings(build_parser().parse_args([*command, flag, value]), cls)
    assert str(getattr(given, new)) == value or getattr(given, new) == float(value)
    assert capsys.readouterr().err == ""  # the new flag: no word


def test_an_old_keyword_still_works_in_the_python_api_with_a_deprecation_warning(monkeypatch):
    import cnnkit.scan.photo as photo

    seen = {}
    monkeypatch.setattr(photo, "_scanner", lambda run_dir, c, predictor: seen.setdefault("config", c) and 1 / 0)
    with pytest.warns(DeprecationWarning, match="`threshold` is now `detection_threshold`"), \
            pytest.raises(ZeroDivisionError):
        photo.scan_photo("run", "photo.png", "out", threshold=0.4, method="sliding")
    assert seen["config"].detection_threshold == 0.4 and seen["config"].mode == "sliding"


def test_records_written_before_a_rename_read_with_the_new_names():
    old = {"threshold": 0.25, "steps": 40, "crop": 64}
    assert C.PointsConfig.from_dict(old) == C.PointsConfig(detection_threshold=0.25, steps_per_epoch=40, crop=64)
