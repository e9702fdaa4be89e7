"""``--auto``: the candidates within a budget, ranked on validation data, the best kept, the test split scored once."""

import json

import pytest

from cnnkit.config import TrainConfig
from cnnkit.errors import ConfigError
from cnnkit.recipes.auto import auto_train, parse_budget, small_grayscale
from tests.conftest import write_image_folder


@pytest.mark.parametrize("text, seconds", [("600", 600), ("90s", 90), ("10m", 600), ("1.5h", 5400), (45, 45)])
def test_budgets_read_as_durations(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5m", "ten", "nan", "5d", ""])
def test_a_wrong_budget_is_refused_by_name(text):
    with pytest.raises(ConfigError, match="`budget`"):
        parse_budget(text)


def test_small_grayscale_images_are_recognised(tmp_path):
    assert small_grayscale(write_image_folder(tmp_path / "gray", ["a", "b"], 4, size=16, mode="L"))
    assert small_grayscale(write_image_folder(tmp_path / "rgba", ["a", "b"], 4, size=16, mode="RGBA"))  # gray pixels
    assert not small_grayscale(write_image_folder(tmp_path / "rgb", ["a", "b"], 4, size=16, mode="colour"))
    assert not small_grayscale(write_image_folder(tmp_path / "big", ["a", "b"], 4, size=96, mode="L"))


def candidates(run) -> dict[str, dict]:
    return {e["name"]: e for e in json.loads((run / "config.json").read_text())["recipe"]["candidates"]}


@pytest.mark.slow
def test_a_tiny_budget_keeps_the_cheap_floor_and_says_what_it_skipped(tmp_path, monkeypatch, capsys):
    from cnnkit.cli import main

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    data = write_image_folder(tmp_path / "data", ["a", "b"], 10, size=32, mode="colour")
    code = main(["train", str(data), "--auto", "--budget", "1s", "--image-size", "64", "--out",
                 str(tmp_path / "run"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    found = candidates(tmp_path / "run")
    assert {"probe", "transfer-efficientnet_lite0", "scratch", "finetune"} <= set(found)
    assert found["finetune"]["status"] == "skipped" and "budget" in found["finetune"]["note"]
    assert found["scratch"]["status"] == "skipped"  # colour images
    kept = [e for e in found.values() if e["status"] == "kept"]
    assert len(kept) == 1 and kept[0]["name"] in ("probe", "transfer-efficientnet_lite0")
    assert all(e["status"] == "skipped" for name, e in found.items() if name.startswith("transfer-efficientnet_lite")
               and name != "transfer-efficientnet_lite0")  # no time for the other backbones
    assert "Recipes tried" in out and "Test" in out  # the leaderboard, then the kept run's test score
    # the test split was scored once, for the kept run only; no candidate ever saw it
    assert (tmp_path / "run" / "metrics.json").exists()
    assert 'id="recipes"' in (tmp_path / "run" / "report.html").read_text()  # the leaderboard in the report
    assert not list((tmp_path / "run" / "candidates").rglob("metrics.json"))
    assert main(["train", str(data), "--budget", "1m"]) == 1  # a budget without --auto is refused
    assert "--budget is the time of --auto" in capsys.readouterr().err


@pytest.mark.slow
def test_every_candidate_runs_within_a_budget_and_the_best_on_validation_is_kept(tmp_path, monkeypatch):
    from cnnkit.inference import Predictor
    from cnnkit.run import RunFolder

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    data = write_image_folder(tmp_path / "data", ["a", "b", "c"], 10, size=16, mode="L")
    trained = auto_train(data, tmp_path / "run", TrainConfig(image_size=(48, 48), epochs=3), budget="10m",
                         progress=False)
    found = candidates(tmp_path / "run")
    assert all(e["status"] in ("ranked", "kept") for e in found.values()), found
    assert found["finetune"]["note"].endswith("s planned")
    transfers = sorted((e for name, e in found.items() if name.startswith("transfer-")),
                       key=lambda e: (-e["val_accuracy"], e["val_loss"]))
    assert found["finetune"]["note"].startswith(transfers[0]["name"][len("transfer-"):])  # the best backbone
    best = max(found.values(), key=lambda e: e["val_accuracy"])["val_accuracy"]
    kept = found[trained.record.recipe.kept]
    assert kept["status"] == "kept" and kept["val_accuracy"] == best
    source = RunFolder(tmp_path / "run" / kept["folder"]).read_record()
    assert trained.record.model == source.model and trained.record.result == source.result
    assert RunFolder(tmp_path / "run").read_split() == RunFolder(tmp_path / "run" / kept["folder"]).read_split()
    splits = [RunFolder(tmp_path / "run" / e["folder"]).read_split() for e in found.values()]
    assert all(split == splits[0] for split in splits)  # every candidate on the same split
    assert Predictor.load(tmp_path / "run").predict_proba(sorted((data / "a").glob("*.png"))[:2]).shape == (2, 3)


def test_a_failing_candidate_is_recorded_and_a_signal_stops_everything(tmp_path):
    from cnnkit.errors import Interrupted
    from cnnkit.recipes.auto import Chooser
    from cnnkit.run import RunFolder

    chooser = Chooser(tmp_path / "data", RunFolder(tmp_path / "out"), TrainConfig(), 60, progress=False)

    def broken(out):
        raise ValueError("bad features")

    chooser.attempt("probe", broken, "cross-validation on train+val")
    assert chooser.board[0]["status"] == "failed" and "ValueError: bad features" in chooser.board[0]["note"]

    def stopped(out):
        raise Interrupted("Training was stopped", 2)

    with pytest.raises(Interrupted):
        chooser.attempt("transfer-efficientnet_lite0", stopped, "cross-validation on train+val")


def test_a_time_limit_must_be_positive(tmp_path):
    from cnnkit.training.fit import train

    with pytest.raises(ConfigError, match="`time_limit`"):
        train(tmp_path, tmp_path / "run", TrainConfig(), time_limit=0)


@pytest.mark.slow
def test_the_printed_command_reproduces_the_kept_recipe(tmp_path, monkeypatch, capsys):
    """`--auto` prints one command for its kept recipe; run as printed, it gives the same validation score on the
    same split."""
    import shlex

    from cnnkit.cli import main

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    write_image_folder(tmp_path / "data", ["a", "b"], 10, size=32, mode="colour")
    assert main(["train", "data", "--auto", "--budget", "1s", "--image-size", "64", "--out", "auto",
                 "--no-progress"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("Reproduce the kept recipe"))
    command = shlex.split(line.split(": ", 1)[1])
    assert command[:3] in (["cnnkit", "train", "data"], ["cnnkit", "baseline", "data"])
    assert main([*command[1:], "--out", "again", *(["--no-progress"] if command[1] == "train" else [])]) == 0
    kept = json.loads((tmp_path / "auto" / "config.json").read_text())
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    score = lambda r: (r.get("cross_validation") or {}).get("cv_accuracy") or r["result"]["best_val_acc"]  # noqa: E731
    assert score(again) == pytest.approx(score(kept))
    assert json.loads((tmp_path / "again" / "split.json").read_text())["splits"] == json.loads(
        (tmp_path / "auto" / "split.json").read_text())["splits"]


def test_a_network_candidates_command_trains_the_same_run(tmp_path, monkeypatch):
    import shlex

    from cnnkit.cli import main
    from cnnkit.cli.train import reproduce_command
    from cnnkit.training.fit import train

    monkeypatch.chdir(tmp_path)
    write_image_folder(tmp_path / "data", ["a", "b"], 10, size=16, mode="L")
    train("data", "first", TrainConfig(model="tiny_cnn", epochs=2, lr=0.01, seed=3, batch_size=8), progress=False)
    command = shlex.split(reproduce_command("data", tmp_path / "first"))
    assert command[:5] == ["cnnkit", "train", "data", "--model", "tiny_cnn"] and "--seed" in command
    assert main([*command[1:], "--out", "again", "--no-progress"]) == 0
    first, again = (json.loads((tmp_path / name / "config.json").read_text()) for name in ("first", "again"))
    assert again["training"] == first["training"] and again["result"]["best_val_loss"] == pytest.approx(
        first["result"]["best_val_loss"])


@pytest.mark.slow
def test_the_stages_candidate_sees_textures_the_last_stage_pools_away_and_its_command_reproduces_it(
        tmp_path, monkeypatch, capsys):
    """Stripes and checks of one mean colour: the fixture's backbone separates them before its last stage only. The
    probe and the plain transfer run guess; the candidate with the last three stages' features is right, is kept,
    and its printed command gives the same cross-validated score on the same split."""
    import shlex

    from cnnkit.cli import main
    from tests.unit.stage_textures import register, write_textures

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the fixture's backbone has its weights in its timm config
    monkeypatch.chdir(tmp_path)
    name = register()
    write_textures(tmp_path / "data", per_class=16)
    assert main(["train", "data", "--auto", "--model", name, "--budget", "10m", "--out", "auto",
                 "--no-progress"]) == 0
    found = candidates(tmp_path / "auto")
    stages = found[f"stages-{name}"]
    assert stages["status"] == "kept" and stages["val_accuracy"] == 1.0 and stages["seconds"] is not None
    assert found["probe"]["val_accuracy"] < stages["val_accuracy"]
    assert found[f"transfer-{name}"]["val_accuracy"] < stages["val_accuracy"]
    cache = json.loads((tmp_path / "auto" / "config.json").read_text())["feature_cache"]
    assert cache["computed"] == 0  # the probe's backbone pass cached every stage's features
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("Reproduce the kept recipe"))
    command = shlex.split(line.split(": ", 1)[1])
    assert "feature_stages=3" in command
    assert main([*command[1:], "--out", "again", "--no-progress"]) == 0
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert again["result"]["best_val_acc"] == pytest.approx(stages["val_accuracy"])  # cross-validated, as --auto
    assert again["model"]["options"]["feature_stages"] == 3
    assert json.loads((tmp_path / "again" / "split.json").read_text())["splits"] == json.loads(
        (tmp_path / "auto" / "split.json").read_text())["splits"]
