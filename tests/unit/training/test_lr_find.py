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
from cnnkit.training.lr_find import (
    RULE,
    RULES,
    SMOOTHING,
    candidate_rates,
    falling_start,
    fastai_valley,
    lowest_tenth,
    smooth,
    steepest,
    sweep_rates,
    valley,
)


def test_the_rates_are_a_geometric_series_from_start_to_end():
    rates = sweep_rates(LrFindConfig(start_lr=1e-5, end_lr=1.0, batches=11))
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


RATES = sweep_rates(LrFindConfig(start_lr=1e-7, end_lr=10.0, batches=100))  # 0.08 decades a batch


def made_up_sweep(noise: float = 0.0, plateau_until: float = 1e-4, lowest_at: float = 1e-2) -> list[float]:
    """A smoothed loss that sits at 2.3 until ``plateau_until``, falls linearly in log rate to 0.3 at ``lowest_at``
    and rises after it, with a zigzag of ``noise`` on the plateau (what smoothing leaves of a batch's noise)."""
    curve = []
    for i, rate in enumerate(RATES):
        if rate <= plateau_until:
            curve.append(2.3 + noise * (-1) ** i * (1 - i / 100))
        elif rate <= lowest_at:
            curve.append(2.3 - 2.0 * math.log(rate / plateau_until) / math.log(lowest_at / plateau_until))
        else:
            curve.append(0.3 + 3.0 * math.log(rate / lowest_at))
    return curve


def test_lowest_tenth_is_a_tenth_of_the_rate_at_the_lowest_loss():
    curve = made_up_sweep()
    assert lowest_tenth(RATES, curve) == pytest.approx(RATES[curve.index(min(curve))] / 10)
    assert lowest_tenth(RATES, curve) == pytest.approx(1e-3, rel=0.1)


def test_steepest_is_where_the_loss_falls_fastest_after_the_first_batches():
    curve = [5.0, 1.0] + [2.0] * 40 + [2.0 - 0.01 * i for i in range(20)] + [1.8 - 0.2 * i for i in range(5)]
    curve += [0.8 - 0.01 * i for i in range(20)]  # the steep part: batches 62 to 66; batch 0's fall is skipped
    assert 62 <= RATES.index(steepest(RATES, curve)) <= 66


def test_fastai_valley_matches_fastai_code():
    def fastai_reference(lrs, losses):  # fastai.callback.schedule.valley over recorder.losses[n // 10:-5]
        skip = len(losses) // 10
        lrs, losses = lrs[skip:len(losses) - 5], losses[skip:-5]
        n, max_start, max_end, lds = len(losses), 0, 0, [1] * len(losses)
        for i in range(1, n):
            for j in range(i):
                if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                    lds[i] = lds[j] + 1
                if lds[max_end] < lds[i]:
                    max_end = i
                    max_start = max_end - lds[max_end]
        sections = (max_end - max_start) / 3
        return lrs[max_start + int(sections) + int(sections / 2)]

    rng = np.random.default_rng(0)
    for noise in (0.0, 0.05, 0.3):
        curve = [v + noise * rng.standard_normal() for v in made_up_sweep()][:90]
        assert fastai_valley(RATES, curve) == fastai_reference(RATES, curve)


def test_the_falling_valley_starts_where_the_loss_has_clearly_begun_to_fall():
    curve = made_up_sweep(noise=0.01)
    start = falling_start(curve)
    assert curve[start] < 0.98 * 2.3 <= curve[start - 1] and RATES[start] > 1e-4
    assert RULES["falling_valley"](RATES, curve) == pytest.approx(1e-3, rel=0.25)  # halfway from 1e-4 to 1e-2
    assert RULES["valley"](RATES, curve) < 1e-4, "the plain valley starts in the plateau's noise, its middle too"


@pytest.mark.parametrize("plateau_until", [1e-5, 1e-4, 1e-3])
def test_the_suggestion_follows_where_the_loss_falls_not_the_start_of_the_sweep(plateau_until):
    curve = made_up_sweep(noise=0.01, plateau_until=plateau_until, lowest_at=plateau_until * 100)
    suggested = candidate_rates(RATES, curve)[RULE]
    assert plateau_until < suggested < plateau_until * 100


def test_every_rule_suggests_two_significant_digits_within_the_sweep():
    rates = candidate_rates(RATES, made_up_sweep(noise=0.01))
    assert set(rates) == set(RULES) and RULE in rates
    assert all(float(f"{rate:.2g}") == rate and 1e-7 <= rate <= 10 for rate in rates.values())


@pytest.mark.parametrize("bad", [{"start_lr": 0.0}, {"end_lr": -1.0}, {"start_lr": 1.0, "end_lr": 0.1},
                                 {"batches": 9}, {"start_lr": math.nan}])
def test_bad_sweep_settings_are_refused_naming_the_parameter(bad):
    with pytest.raises(ConfigError, match=f"`{next(iter(bad))}`"):
        LrFindConfig(**bad)


FINETUNE = ["--strategy", "finetune", "--pretrained", "--model", "efficientnet_lite0"]


@pytest.mark.parametrize("argv,flag", [(["--start-lr", "1", "--end-lr", "0.1"], "--start-lr"),
                                       (["--batches", "5"], "--batches"), (FINETUNE, "strategy")])
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


@pytest.mark.slow  # trains a network (or starts the CLI in subprocesses): end to end
def test_lr_find_sweeps_suggests_before_divergence_and_writes_only_its_files(pattern_data, tmp_path, capsys,
                                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = files_under(pattern_data)
    argv = ["lr-find", str(pattern_data), "--out", "sweep", "--model", "simple_cnn", "--optimizer", "sgd",
            "--batch-size", "16", "--start-lr", "1e-4", "--batches", "60", "--option", "filters=8,16"]
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
    assert found["rule"] == RULE and found["candidates"][RULE] == found["suggestion"]
    assert set(found["candidates"]) == set(RULES)  # every rule recorded, for comparison
    assert 1e-4 / 10 <= found["suggestion"] < lrs[found["diverged_at"]]
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

    transfer = lr_find(pattern_data, model="efficientnet_lite0", pretrained=True, batches=40, progress=False)
    assert transfer.train_changes == {"lr": transfer.suggestion, "head_solver": "epochs"}
    assert transfer.lrs[0] <= transfer.suggestion <= transfer.lrs[-1]
    export_dataset("wafers-mixed", tmp_path / "mixed", size=6)
    labels = lr_find(training_path("wafers-mixed", tmp_path / "mixed"), model="tiny_cnn", batches=40, progress=False)
    assert labels.multi_label and labels.lrs[0] <= labels.suggestion <= labels.lrs[-1]
