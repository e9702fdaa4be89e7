"""``--auto``'s budget, on a fake clock: every candidate is run only when its estimate fits the time left after the
reserve for scoring the test split, so the whole command ends within the budget plus 10%, also when the machine is
slow (a probe that takes half the budget), and the leaderboard says why a candidate was skipped."""

from types import SimpleNamespace

import pytest

import cnnkit.baselines.fit
import cnnkit.recipes.auto as auto
import cnnkit.training.fit
from cnnkit.config import TrainConfig
from cnnkit.run import RunFolder

COUNTS = {"train": {"a": 70, "b": 70}, "val": {"a": 15, "b": 15}, "test": {"a": 15, "b": 15}}


class FakeMachine:
    """A clock that only candidates move: the probe takes ``probe`` seconds; a transfer run what its features and
    two cross-validations really take (twice the probe, as the chooser assumes, times ``transfer_factor``), with
    several stages' features half that (they are cached: only the head is fitted); epoch training stops at its time
    limit, as Lightning's ``max_time`` does."""

    def __init__(self, probe: float, transfer_factor: float = 1.0, epoch: float = 30.0):
        self.now, self.probe, self.transfer_factor, self.epoch = 1000.0, probe, transfer_factor, epoch

    def clock(self) -> float:
        return self.now

    def run(self, seconds: float, name: str, cross_validated: bool, accuracy: float, options: dict | None = None):
        self.now += seconds
        record = SimpleNamespace(
            cross_validation=SimpleNamespace(cv_accuracy=accuracy) if cross_validated else None,
            result=SimpleNamespace(best_val_acc=accuracy, best_val_loss=1 - accuracy),
            data=SimpleNamespace(counts=COUNTS), model=SimpleNamespace(name=name, options=options or {}),
            preprocessing=SimpleNamespace(image_size=(224, 224)))
        return SimpleNamespace(record=record)

    def train_baseline(self, data_dir, out, settings):
        return self.run(self.probe, settings.backbone, True, 0.80)

    def train(self, data_dir, out, config, progress=True, time_limit=None):
        if config.strategy == "transfer":
            stages = config.model_options.get("feature_stages", 1) > 1
            seconds = (1 if stages else 2) * self.probe * self.transfer_factor
            if config.unlabelled:  # self-training on a pool: its features too; better here
                return self.run(seconds + self.probe, config.model, True, 0.86, config.model_options)
            return self.run(seconds, config.model, True, 0.83 if stages else 0.82, config.model_options)
        planned = self.epoch * (config.finetune_epochs if config.strategy == "finetune" else config.epochs)
        return self.run(min(planned, time_limit), config.model, False, 0.90)

    def score_test_split(self) -> None:
        """The kept run's test scoring: the probe's pace per image, twice (mirror images)."""
        per_image = self.probe / sum(sum(COUNTS[split].values()) for split in ("train", "val"))
        self.now += 2 * per_image * sum(COUNTS["test"].values()) + 3


@pytest.fixture
def machine(monkeypatch):
    def make(probe: float, **kwargs) -> FakeMachine:
        fake = FakeMachine(probe, **kwargs)
        monkeypatch.setattr(cnnkit.baselines.fit, "train_baseline", fake.train_baseline)
        monkeypatch.setattr(cnnkit.training.fit, "train", fake.train)
        monkeypatch.setattr(auto, "seconds_per_training_image", lambda backbone, *a, **k: 0.05 * (
            1 + ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"].index(backbone)))
        monkeypatch.setattr(auto, "small_grayscale", lambda data_dir: False)
        monkeypatch.setattr(auto, "_backbones", lambda config: ["efficientnet_lite0", "efficientnet_lite1",
                                                                "efficientnet_lite2"])
        return fake
    return make


def choose(fake: FakeMachine, budget: float, tmp_path) -> tuple[auto.Chooser, dict]:
    chooser = auto.Chooser(tmp_path / "data", RunFolder(tmp_path / "out"), TrainConfig(epochs=10), budget,
                           progress=False, clock=fake.clock)
    chooser.run_all()
    fake.score_test_split()
    return chooser, {e["name"]: e for e in chooser.board}


def test_a_slow_machine_keeps_the_budget_by_skipping_what_does_not_fit(machine, tmp_path):
    fake = machine(probe=100.0)  # a loaded machine: feature extraction takes over half of a 3-minute budget
    chooser, board = choose(fake, 180, tmp_path)
    assert fake.now - 1000 <= 180 * 1.1
    assert board["probe"]["status"] == "ranked"
    for name in ("transfer-efficientnet_lite0", "stages-efficientnet_lite0", "finetune"):
        assert board[name]["status"] == "skipped", board[name]
    assert "estimated" in board["transfer-efficientnet_lite0"]["note"]
    assert "test split" in board["transfer-efficientnet_lite0"]["note"]  # the reserve is named
    assert chooser.ranked()[0]["name"] == "probe"


def test_a_fast_machine_spends_the_budget_learning(machine, tmp_path):
    fake = machine(probe=10.0, epoch=20.0)
    chooser, board = choose(fake, 600, tmp_path)
    assert fake.now - 1000 <= 600 * 1.1
    assert [board[n]["status"] for n in ("probe", "transfer-efficientnet_lite0", "stages-efficientnet_lite0",
                                         "transfer-efficientnet_lite1", "finetune")] == ["ranked"] * 5
    assert board["finetune"]["note"].endswith("planned")
    assert chooser.ranked()[0]["name"] == "finetune"


@pytest.mark.parametrize("budget", [60, 120, 180, 300, 600])
@pytest.mark.parametrize("probe", [2.0, 10.0, 25.0])
def test_the_budget_holds_whatever_the_speed(machine, tmp_path, budget, probe):
    fake = machine(probe=probe, epoch=probe * 3)
    choose(fake, budget, tmp_path)
    assert fake.now - 1000 <= budget * 1.1


def test_an_estimate_that_proves_short_is_caught_by_the_next_candidates(machine, tmp_path):
    """A transfer run that takes three times its estimate: the candidates after it see the time really left."""
    fake = machine(probe=20.0, transfer_factor=3.0)
    _, board = choose(fake, 300, tmp_path)
    assert board["transfer-efficientnet_lite0"]["status"] == "ranked"
    assert board["transfer-efficientnet_lite1"]["status"] == "skipped"  # estimated from the real 120 s
    assert board["finetune"]["seconds"] <= 300 - 20 - 120
    assert fake.now - 1000 <= 300 * 1.1


def test_no_training_step_is_timed_once_the_budget_is_spent(machine, tmp_path, monkeypatch):
    """Timing a training step takes a minute on a loaded machine: with no time left after the reserve, the other
    backbones and fine-tuning are skipped without it."""
    fake = machine(probe=20.0, transfer_factor=3.0)  # the transfer run takes 120 s of 150
    timed = []
    monkeypatch.setattr(auto, "seconds_per_training_image", lambda *a, **k: timed.append(a) or 0.05)
    _, board = choose(fake, 150, tmp_path)
    assert board["transfer-efficientnet_lite0"]["status"] == "ranked" and timed == []
    for name in ("transfer-efficientnet_lite1", "transfer-efficientnet_lite2", "finetune"):
        assert board[name]["status"] == "skipped" and "no time left" in board[name]["note"]
    assert fake.now - 1000 <= 150 * 1.1


def test_each_backbone_is_timed_once(machine, tmp_path, monkeypatch):
    fake = machine(probe=2.0)
    timed = []
    monkeypatch.setattr(auto, "seconds_per_training_image", lambda *a, **k: timed.append(a[:3]) or 0.05)
    choose(fake, 600, tmp_path)
    assert len(timed) == len(set(timed))


@pytest.mark.parametrize("budget", [60, 300, 600])
def test_small_grayscale_images_get_the_scratch_recipe_first_within_the_budget(machine, tmp_path, monkeypatch,
                                                                               budget):
    """Digits and wafer maps: the scratch CNN is trained before the pretrained candidates, whose upscaled features
    could take the whole budget, with its recipe (simple_cnn, 60 epochs, augmentation that mirrors nothing), stopped
    at 40% of the time left; the probe still runs and the whole command keeps the budget."""
    fake = machine(probe=25.0, epoch=20.0)
    monkeypatch.setattr(auto, "small_grayscale", lambda data_dir: True)
    trained, fake_train = [], fake.train
    monkeypatch.setattr(cnnkit.training.fit, "train", lambda data_dir, out, config, **kwargs: trained.append(
        (out.name, config)) or fake_train(data_dir, out, config, **kwargs))
    chooser, board = choose(fake, budget, tmp_path)
    assert chooser.board[0]["name"] == "scratch" and board["scratch"]["status"] == "ranked"
    name, config = trained[0]
    assert name == "scratch" and config.model == "simple_cnn" and config.strategy == "scratch"
    assert config.epochs == 60 and config.early_stopping == 20
    assert config.augment and "flip" not in config.augment
    assert board["scratch"]["seconds"] <= 0.4 * budget
    assert board["probe"]["status"] == "ranked"
    assert fake.now - 1000 <= budget * 1.1


def test_the_scratch_candidate_keeps_the_augmentation_asked_for(machine, tmp_path, monkeypatch):
    fake = machine(probe=5.0, epoch=1.0)
    monkeypatch.setattr(auto, "small_grayscale", lambda data_dir: True)
    trained, fake_train = [], fake.train
    monkeypatch.setattr(cnnkit.training.fit, "train", lambda data_dir, out, config, **kwargs: trained.append(
        config) or fake_train(data_dir, out, config, **kwargs))
    chooser = auto.Chooser(tmp_path / "data", RunFolder(tmp_path / "out"), TrainConfig(augment="flip=v,rotate=180",
                           early_stopping=0), 300, progress=False, clock=fake.clock)
    chooser.run_all()
    assert trained[0].augment == "flip=v,rotate=180" and trained[0].early_stopping == 0


@pytest.mark.parametrize("budget, runs", [(600.0, True), (60.0, False)])
def test_a_pool_is_a_candidate_of_its_own_ranked_with_the_rest_when_it_fits(machine, tmp_path, monkeypatch, budget,
                                                                            runs):
    from tests.conftest import write_image_folder

    fake = machine(probe=10.0)
    configs = []
    monkeypatch.setattr(cnnkit.training.fit, "train", lambda data_dir, out, config, **kw: (
        configs.append(config), fake.train(data_dir, out, config, **kw))[1])
    pool = write_image_folder(tmp_path / "pool", ["any"], 50)
    chooser = auto.Chooser(tmp_path / "data", RunFolder(tmp_path / "out"), TrainConfig(epochs=10, unlabelled=str(pool)),
                           budget, progress=False, clock=fake.clock)
    ranked = chooser.run_all()
    board = {e["name"]: e for e in chooser.board}
    entry = board["pool-efficientnet_lite0"]
    assert [c.unlabelled for c in configs if c.unlabelled] == ([str(pool)] if runs else [])  # only it sees the pool
    if runs:
        assert entry["status"] == "ranked" and entry["note"] == "self-training on 50 unlabelled images"
        names = [e["name"] for e in ranked]
        assert names.index("pool-efficientnet_lite0") < names.index("transfer-efficientnet_lite0")  # 0.86 > 0.82
    else:  # the transfer run took the time the pool would need
        assert entry["status"] == "skipped" and "estimated" in entry["note"]
    fake.score_test_split()
    assert fake.now - 1000.0 <= budget * 1.1
