from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cnnkit._io import read_json
from cnnkit.config import TrainConfig
from cnnkit.config.training import OPTIMIZERS
from cnnkit.errors import ConfigError, RunError
from cnnkit.training.fit import resume, train
from cnnkit.training.optim import create_optimizer, create_scheduler

FAST = dict(model="tiny_cnn", batch_size=16, lr=0.01)


def test_run_folder_holds_everything(trained_run: Path):
    config = read_json(trained_run / "config.json")
    assert config["status"] == "finished" and config["classes"] == ["left", "right", "top"]
    assert config["model"]["name"] == "tiny_cnn" and config["preprocessing"]["image_size"] == [16, 16]
    split = read_json(trained_run / "split.json")
    assert {k: len(v) for k, v in split["splits"].items()} == {"train": 60, "val": 15, "test": 15}
    for name in ("model.safetensors", "metrics.json", "logs/metrics.csv", "checkpoints/last.ckpt"):
        assert (trained_run / name).exists(), name
    assert list((trained_run / "logs").glob("events.out.tfevents*")), "TensorBoard log missing"
    metrics = read_json(trained_run / "metrics.json")
    assert metrics["n"] == 15 and metrics["accuracy"] > 0.8  # three easy classes: far above chance (1/3)


def test_same_seed_same_weights(pattern_data: Path, tmp_path: Path):
    config = TrainConfig(epochs=2, **FAST)
    train(pattern_data, tmp_path / "a", config, progress=False)
    train(pattern_data, tmp_path / "b", config, progress=False)
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    train(pattern_data, tmp_path / "c", TrainConfig(epochs=2, seed=1, **FAST), progress=False)
    c = load_file(tmp_path / "c" / "model.safetensors")
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_existing_run_is_never_overwritten(trained_run: Path, pattern_data: Path):
    before = (trained_run / "model.safetensors").read_bytes()
    with pytest.raises(RunError, match="already holds a run"):
        train(pattern_data, trained_run, TrainConfig(epochs=1, **FAST), progress=False)
    assert (trained_run / "model.safetensors").read_bytes() == before


def test_resume_continues_from_last_checkpoint(pattern_data: Path, tmp_path: Path):
    run = tmp_path / "run"
    train(pattern_data, run, TrainConfig(epochs=2, early_stopping=0, **FAST), progress=False)
    result = resume(run, epochs=4, progress=False)
    assert result.result.epochs_run == 4
    epochs = [line.split(",")[0] for line in (run / "logs" / "metrics.csv").read_text().splitlines()[1:]]
    assert sorted(set(epochs)) == ["0", "1", "2", "3"]  # the epochs before the resume are kept in the log
    assert read_json(run / "config.json")["training"]["epochs"] == 4


def test_resume_without_checkpoint(tmp_path: Path, trained_run: Path):
    with pytest.raises(RunError, match="does not exist"):
        resume(tmp_path / "nothing")


def test_early_stopping_stops(pattern_data: Path, tmp_path: Path):
    result = train(pattern_data, tmp_path / "r", TrainConfig(epochs=30, early_stopping=1, model="tiny_cnn",
                                                             lr=0.5, optimizer="sgd"), progress=False)
    assert result.result.epochs_run < 30


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("scheduler", ["none", "cosine", "step", "plateau"])
def test_every_optimizer_and_schedule_builds(optimizer: str, scheduler: str):
    config = TrainConfig(optimizer=optimizer, scheduler=scheduler, lr=0.1, momentum=0.5)
    params = [torch.nn.Parameter(torch.ones(3))]
    opt = create_optimizer(params, config)
    assert type(opt).__name__.lower() == optimizer
    assert opt.param_groups[0]["lr"] == 0.1
    assert (create_scheduler(opt, config) is None) == (scheduler == "none")


def test_config_validation():
    with pytest.raises(ConfigError, match="'optimizer' parameter of TrainConfig must be one of"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ConfigError, match="epochs=0"):
        TrainConfig(epochs=0)
    assert TrainConfig.from_dict(TrainConfig(image_size=(8, 9)).to_dict()) == TrainConfig(image_size=(8, 9))


def test_settings_fail_before_any_image_is_decoded(pattern_data: Path, tmp_path: Path, monkeypatch):
    from cnnkit.training import fit

    def no_decoding(*args, **kwargs):
        raise AssertionError("images were decoded before the settings were checked")

    monkeypatch.setattr(fit, "prepare_training_data", no_decoding)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(ConfigError, match="accelerator 'cuda' is not available"):
        train(pattern_data, tmp_path / "r", TrainConfig(accelerator="cuda", **FAST), progress=False)
    with pytest.raises(ConfigError, match="'init' parameter"):
        train(pattern_data, tmp_path / "r", init="he", progress=False)
    assert not (tmp_path / "r").exists()


@pytest.mark.slow  # trains a network (or starts the CLI in subprocesses): end to end
def test_a_run_stopped_between_phases_resumes_as_if_never_stopped(tmp_path: Path, monkeypatch):
    """Stopped after the head's last checkpoint, before fine-tuning began: the resumed run starts fine-tuning from
    the state (weights, random state) the uninterrupted one had there."""
    import timm
    from safetensors.torch import save_file

    from cnnkit.errors import Interrupted
    from cnnkit.training import phases
    from tests.conftest import write_image_folder

    monkeypatch.setenv("CNNKIT_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(0)
    weights = tmp_path / "backbone.safetensors"
    save_file(timm.create_model("test_efficientnet", num_classes=0).state_dict(), str(weights))
    data = write_image_folder(tmp_path / "data", ["a", "b"], 12, size=32)
    config = TrainConfig(model="test_efficientnet", weights=str(weights), strategy="finetune", epochs=2,
                         finetune_epochs=3, early_stopping=0, batch_size=4, image_size=(32, 32))
    train(data, tmp_path / "whole", config, progress=False)
    run_phase = phases.PhaseRunner._run_phase

    def stop_before_fine_tuning(self, phase, index, *args):
        if index == 1:
            raise Interrupted("Training was stopped by SIGTERM", 15)
        return run_phase(self, phase, index, *args)

    monkeypatch.setattr(phases.PhaseRunner, "_run_phase", stop_before_fine_tuning)
    with pytest.raises(Interrupted):
        train(data, tmp_path / "stopped", config, progress=False)
    monkeypatch.setattr(phases.PhaseRunner, "_run_phase", run_phase)
    resume(tmp_path / "stopped", progress=False)
    whole, stopped = (load_file(tmp_path / r / "model.safetensors") for r in ("whole", "stopped"))
    assert all(torch.equal(whole[k], stopped[k]) for k in whole)
    logs = [(tmp_path / r / "logs" / "metrics.csv").read_text().splitlines() for r in ("whole", "stopped")]
    assert [line.rsplit(",", 1)[0] for line in logs[0]] == [line.rsplit(",", 1)[0] for line in logs[1]]


def test_a_stop_before_the_first_epoch_leaves_no_lock_and_a_true_status(pattern_data: Path, tmp_path: Path,
                                                                        monkeypatch):
    from cnnkit.errors import Interrupted
    from cnnkit.training import fit, phases

    def stopped(*args, **kwargs):
        raise Interrupted("Stopped by SIGTERM", 15)

    with monkeypatch.context() as patch:  # while the images are decoded: nothing written, nothing left
        patch.setattr(fit, "prepare_training_data", stopped)
        with pytest.raises(Interrupted, match="nothing was written"):
            train(pattern_data, tmp_path / "early", TrainConfig(**FAST), progress=False)
    assert not (tmp_path / "early").exists()
    with monkeypatch.context() as patch:  # after the record, before an epoch ended
        patch.setattr(phases.PhaseRunner, "run_all", stopped)
        with pytest.raises(Interrupted, match="no epoch had ended: start it afresh with `overwrite`"):
            train(pattern_data, tmp_path / "run", TrainConfig(**FAST), progress=False)
    record = read_json(tmp_path / "run" / "config.json")
    assert record["status"] == "interrupted" and "no epoch had ended" in record["status_reason"]
    assert not (tmp_path / "run" / ".lock").exists()


def test_more_epochs_on_resume_stretch_the_schedule_and_stale_evaluations_go(pattern_data: Path, tmp_path: Path):
    from cnnkit.evaluation.evaluate import evaluate_run
    from tests.conftest import write_image_folder

    run = tmp_path / "run"
    train(pattern_data, run, TrainConfig(epochs=2, early_stopping=0, **FAST), progress=False)
    evaluate_run(run, data=write_image_folder(tmp_path / "new", ["left", "right", "top"], 2, seed=21))
    assert (run / "eval-new").exists()
    resume(run, epochs=4, progress=False)
    rates = [float(line.split(",")[6]) for line in (run / "logs" / "metrics.csv").read_text().splitlines()[1:]]
    assert rates[2] > 0 and rates[2] > rates[3]  # the cosine now ends at epoch 4, not at 2
    assert not (run / "eval-new").exists()  # it described the weights before the resume


def test_out_of_range_numbers_are_refused_when_the_settings_are_made():
    from cnnkit.config import ScanConfig

    for bad in ({"lr": float("inf")}, {"lr": 1e300}, {"momentum": 2.0}, {"weight_decay": float("inf")}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            TrainConfig(**bad)
    for scale in (1e308, float("inf"), 100.0):
        with pytest.raises(ConfigError, match="scale"):
            ScanConfig(scale=scale)


def test_photographs_trained_from_scratch_get_a_hint_towards_a_pretrained_backbone(tmp_path: Path, caplog):
    from cnnkit.config import TrainConfig
    from cnnkit.training.fit import train
    from tests.conftest import write_image_folder

    photos = write_image_folder(tmp_path / "photos", ["a", "b"], 8, size=256)
    train(photos, tmp_path / "r1", TrainConfig(model="tiny_cnn", epochs=1), progress=False)
    assert "look like photographs" in caplog.text and "efficientnet_lite0" in caplog.text
    caplog.clear()
    small = write_image_folder(tmp_path / "small", ["a", "b"], 8, size=16)
    train(small, tmp_path / "r2", TrainConfig(model="tiny_cnn", epochs=1), progress=False)
    assert "look like photographs" not in caplog.text


def test_fit_passes_callbacks_of_your_own_to_lightning(pattern_data: Path, tmp_path: Path):
    import lightning as L

    from cnnkit import ImageClassifier

    class Count(L.Callback):
        def __init__(self):
            self.epochs, self.losses = 0, []

        def on_train_epoch_end(self, trainer, module):
            self.epochs += 1
            self.losses.append(float(trainer.callback_metrics["val_loss"]))

    counter = Count()
    clf = ImageClassifier("tiny_cnn", epochs=3, batch_size=16).fit(pattern_data, tmp_path / "r", verbose=False,
                                                                   callbacks=[counter])
    assert counter.epochs == 3 and counter.losses == pytest.approx(clf.history_["val_loss"])
    from lightning.pytorch.callbacks import ModelCheckpoint

    from cnnkit.errors import ConfigError

    with pytest.raises(ConfigError, match="`callbacks`: ModelCheckpoint is refused"):
        ImageClassifier("tiny_cnn", epochs=1).fit(pattern_data, tmp_path / "r2", verbose=False,
                                                  callbacks=[ModelCheckpoint()])


def test_backbone_settings_on_one_of_cnnkits_own_networks_are_refused_before_any_weights_are_looked_for(
        pattern_data: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="need a timm backbone such as efficientnet_lite0; 'tiny_cnn' is one of"):
        train(pattern_data, tmp_path / "r", TrainConfig(pretrained=True, **FAST), progress=False)
    with pytest.raises(ConfigError, match="Backbones take 3 channels"):
        train(pattern_data, tmp_path / "r", TrainConfig(model="test_efficientnet", channels=1), progress=False)
    assert not (tmp_path / "r").exists()
