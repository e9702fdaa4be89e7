"""The learning-rate finder: an exponential sweep, a suggestion before the divergence, two files and nothing else."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import numpy as np
import pytest

from cnnkit.cli import build_parser, main
from cnnkit.cli.options import settings
from cnnkit.config import LrFindConfig, TrainConfig
from cnnkit.errors import ConfigError
from cnnkit.training.lr_find import SMOOTHING, smooth, sweep_rates, valley


def test_the_rates_are_a_geometric_series_from_start_to_end():
    rates = sweep_rates(LrFindConfig(start_lr=1e-5, end_lr=1.0, steps=11))
    assert len(rates) == 11 and rates[0] == 1e-5 and rates[-1] == 1.0
    assert np.allclose(np.diff(np.log10(rates)), 0.5)


def test_smoothing_is_the_bias_corrected_moving_average():
    losses = [3.0, 1.0, 2.0]
    expected, average = [], 0.0
    for n, loss in enumerate(losses, 1):
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        expected.append(average / (1 - SMOOTHING ** n))
    assert smooth(losses) == pytest.approx(expected) and smooth([2.0])[0] == pytest.approx(2.0)


def test_the_valley_is_the_longest_descent_and_the_choice_its_middle():
    rise = [1.0, 1.1, 1.2]
    descent = [2.0, 1.8, 1.9, 1.5, 1.2, 0.9, 0.95, 0.6, 0.4, 0.3]  # noise does not cut it
    first, last, chosen = valley(rise + descent + [0.5, 2.0])
    assert (first, last) == (3, 12) and chosen == 7


@pytest.mark.parametrize("bad", [{"start_lr": 0.0}, {"end_lr": -1.0}, {"start_lr": 1.0, "end_lr": 0.1},
                                 {"steps": 9}, {"start_lr": math.nan}])
def test_bad_sweep_settings_are_refused_naming_the_parameter(bad):
    with pytest.raises(ConfigError, match=f"`{next(iter(bad))}`"):
        LrFindConfig(**bad)


FINETUNE = ["--strategy", "finetune", "--pretrained", "--model", "efficientnet_lite0"]


@pytest.mark.parametrize("argv,flag", [(["--start-lr", "1", "--end-lr", "0.1"], "--start-lr"),
                                       (["--steps", "5"], "--steps"), (FINETUNE, "strategy")])
def test_the_command_line_refuses_bad_settings_in_one_line(tmp_path, capsys, argv, flag):
    (tmp_path / "data").mkdir()
    assert main(["lr-find", str(tmp_path / "data"), "--out", str(tmp_path / "out"), *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cnnkit: error:") and flag.lstrip("-") in err[0]
    assert not (tmp_path / "out").exists()


def test_lr_find_offers_the_training_options_a_sweep_depends_on():
    from cnnkit.cli.tuning import NOT_SWEPT
    from cnnkit.options import options_of

    actions = {a.dest: a for a in build_parser()._subparsers._group_actions[0].choices["lr-find"]._actions}
    for name, (_, declared) in options_of(TrainConfig).items():
        assert (name in actions) == (name not in NOT_SWEPT), name
        if name in actions:
            assert declared.flag_for(name) in actions[name].option_strings


def test_an_output_folder_inside_the_data_is_refused(pattern_data):
    from cnnkit.training.lr_find import lr_find

    with pytest.raises(ConfigError, match="inside the data folder"):
        lr_find(pattern_data, pattern_data / "sweep", model="tiny_cnn")


def files_under(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_lr_find_sweeps_suggests_before_divergence_and_writes_only_its_files(pattern_data, tmp_path, capsys,
                                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = files_under(pattern_data)
    argv = ["lr-find", str(pattern_data), "--out", "sweep", "--model", "simple_cnn", "--optimizer", "sgd",
            "--batch-size", "16", "--start-lr", "1e-4", "--steps", "60", "--option", "filters=8,16"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert files_under(pattern_data) == before  # the data folder is only read
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]  # no run folder, no Lightning logs
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["lr_find.json", "lr_find.png"]
    found = json.loads((tmp_path / "sweep" / "lr_find.json").read_text())
    lrs = np.array(found["lrs"])
    assert lrs[0] == 1e-4 and np.allclose(np.diff(np.log(lrs)), np.log(10.0 / 1e-4) / 59)
    assert len(found["losses"]) == len(found["smoothed_losses"]) == len(lrs)
    assert found["diverged_at"] == len(lrs) - 1, "SGD at rates up to 10 diverges on these images"
    first, last = found["valley"]
    assert 0 <= first < found["suggestion_index"] < last < found["diverged_at"]
    assert 1e-4 <= found["suggestion"] < lrs[found["diverged_at"]]
    assert found["lowest_loss_lr"] < lrs[found["diverged_at"]]
    assert found["settings"]["model"] == "simple_cnn" and found["settings"]["optimizer"] == "sgd"
    assert (tmp_path / "sweep" / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    line = next(line for line in out.splitlines() if line.startswith("cnnkit train "))
    assert f"{found['suggestion']:g}" in out.splitlines()[0]
    train = settings(build_parser().parse_args(shlex.split(line)[1:]), TrainConfig)  # train takes the line as is
    assert train == TrainConfig(model="simple_cnn", optimizer="sgd", batch_size=16, lr=found["suggestion"],
                                model_options={"filters": (8, 16)})


@pytest.mark.slow
def test_a_pretrained_backbone_sweeps_its_head_and_multi_label_data_sweeps_too(pattern_data, tmp_path):
    from cnnkit.data.builtin import export_dataset, training_path
    from cnnkit.training.lr_find import lr_find

    transfer = lr_find(pattern_data, model="efficientnet_lite0", pretrained=True, steps=40, progress=False)
    assert transfer.train_changes == {"lr": transfer.suggestion, "head_solver": "epochs"}
    assert transfer.lrs[0] <= transfer.suggestion <= transfer.lrs[-1]
    export_dataset("wafers-mixed", tmp_path / "mixed", size=6)
    labels = lr_find(training_path("wafers-mixed", tmp_path / "mixed"), model="tiny_cnn", steps=40, progress=False)
    assert labels.multi_label and labels.lrs[0] <= labels.suggestion <= labels.lrs[-1]
