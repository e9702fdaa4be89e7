"""``--auto``'s ``concat`` candidate: every backbone that ran, in one network, their features concatenated."""

import json
import shlex

import pytest

from tests.unit.recipes.test_auto import candidates
from tests.unit.union_textures import register, write_union_textures


@pytest.mark.slow
def test_the_union_of_backbones_separates_what_neither_does_alone_and_its_command_reproduces_it(
        tmp_path, monkeypatch, capsys):
    """Stripes or checks, dark or bright: one backbone sees only the colour at its last stage, the other only the
    texture. The probe and each backbone's transfer run are right on about half; ``concat`` is right on all (as the
    colour backbone's earlier stages are), reads every feature from the cache, and the command printed for it gives
    the same cross-validated score on the same split. (Fine-tuning is left out: it is not what is tested, and slow.)"""
    from cnnkit.cli import main
    from cnnkit.cli.train import reproduce_command

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the fixtures' backbones have their weights in their timm configs
    monkeypatch.chdir(tmp_path)
    colour, texture = register()
    monkeypatch.setattr("cnnkit.recipes.auto._backbones", lambda config: [colour, texture])
    monkeypatch.setattr("cnnkit.recipes.auto.Chooser.finetune", lambda self: self.skip("finetune", "not tested"))
    write_union_textures(tmp_path / "data", per_class=10)
    assert main(["train", "data", "--auto", "--budget", "10m", "--out", "auto", "--no-progress"]) == 0
    found = candidates(tmp_path / "auto")
    concat = found["concat"]
    assert concat["status"] in ("kept", "ranked") and concat["val_accuracy"] == 1.0 and concat["seconds"] is not None
    assert max(found[name]["val_accuracy"] for name in ("probe", f"transfer-{colour}", f"transfer-{texture}")) < 0.8
    record = json.loads((tmp_path / "auto" / "candidates" / "concat" / "config.json").read_text())
    assert record["feature_cache"]["computed"] == 0  # both backbones' features were cached by their own runs
    assert record["model"]["options"]["concat_backbones"] == [texture]
    command = shlex.split(reproduce_command("data", tmp_path / "auto" / "candidates" / "concat"))
    assert f"concat_backbones={texture}" in command
    assert main([*command[1:], "--out", "again", "--no-progress"]) == 0
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert again["result"]["best_val_acc"] == pytest.approx(concat["val_accuracy"])  # cross-validated, as --auto
    assert json.loads((tmp_path / "again" / "split.json").read_text())["splits"] == json.loads(
        (tmp_path / "auto" / "split.json").read_text())["splits"]


def test_no_union_without_two_finished_backbones(tmp_path):
    from cnnkit.config import TrainConfig
    from cnnkit.recipes.auto import Chooser
    from cnnkit.run import RunFolder

    chooser = Chooser(tmp_path / "data", RunFolder(tmp_path / "out"), TrainConfig(), 60, progress=False)
    chooser.concat()
    assert chooser.board[-1]["name"] == "concat" and chooser.board[-1]["status"] == "skipped"
    assert "fewer than two" in chooser.board[-1]["note"]


def test_a_records_list_option_is_written_back_as_the_flag_that_gave_it():
    """A record's JSON gives tuples back as lists; the reproduce command writes both as `--option name=a,b`."""
    from cnnkit.cli.tuning import train_flags
    from cnnkit.config.parse import parse_options

    for value in (["efficientnet_lite1", "efficientnet_lite2"], ("efficientnet_lite1", "efficientnet_lite2")):
        flags = shlex.split(train_flags({"model": "efficientnet_lite0", "model_options": {"concat_backbones": value}}))
        assert flags[-2:] == ["--option", "concat_backbones=efficientnet_lite1,efficientnet_lite2"]
        assert parse_options(flags[-1]) == {"concat_backbones": tuple(value)}
