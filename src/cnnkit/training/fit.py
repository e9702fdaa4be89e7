"""``train`` a network on a data folder into a run folder, and ``resume`` an interrupted run.

Training writes the run's record twice, when it starts (status "training") and when it ends ("finished"); it never
evaluates: scoring the test split is ``cnnkit.evaluate``'s work (the ``train`` command calls both).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from cnnkit.config import TrainConfig
from cnnkit.config.augment import OVERSAMPLE_DEFAULT
from cnnkit.data.pool import pool_files
from cnnkit.data.prepare import (
    ImageArrays,
    load_samples,
    on_disk,
    prepare_training_data,
    report_counts,
    split_counts,
)
from cnnkit.errors import ConfigError, DataError, RunError
from cnnkit.options import with_options
from cnnkit.run import ModelSpec, RunFolder, RunRecord, TrainedRun
from cnnkit.run.lifecycle import EVALUATION_OUTPUTS, claimed, continuing, refuse_occupied, remove_outputs
from cnnkit.run.record import BalanceRecord, DataRecord
from cnnkit.run.results import Thresholds
from cnnkit.training.balance import balance_record
from cnnkit.training.defaults import choose_model, refuse_one_class_settings
from cnnkit.training.distributed import check_accelerator, is_main, world_size
from cnnkit.training.thresholds import label_thresholds

log = logging.getLogger("cnnkit")


def model_data(config: TrainConfig):
    """What ``config.model`` expects of its images (``models.data_config``: a ``ModelDataConfig``); settings only a
    timm backbone has are refused on cnnkit's own networks."""
    from cnnkit.models import data_config

    data = data_config(config.model, config.pretrained, config.weights, config.image_size, config.channels)
    if not data.backbone and (config.pretrained or config.strategy != "scratch"):
        raise ConfigError(f"`pretrained` and strategy={config.strategy!r} need a timm backbone such as "
                          f"efficientnet_lite0; {config.model!r} is one of cnnkit's own networks.")
    return data


def probe_model(config: TrainConfig):
    """The model on the meta device: a wrong name or option, or settings the model does not take, fail before any
    image is decoded."""
    import torch

    from cnnkit.models import create_model, data_config, model_options

    if config.code_size is not None and "code_size" not in model_options(config.model):
        _check_task(config, reconstructs=False)
    size = data_config(config.model, image_size=config.image_size).build_size
    with torch.device("meta"):
        probe = create_model(config.model, 2, 3, size, **config.network_options)
    _check_task(config, probe.reconstructs)
    model_data(config)  # the settings only a backbone takes (`pretrained`, 3 channels)
    return probe


def _check_task(config: TrainConfig, reconstructs: bool) -> None:
    """Settings of one task refused on the other, before any image is decoded."""
    if config.code_size is not None and not reconstructs:
        raise ConfigError(f"`code_size` sets an autoencoder's code; {config.model!r} is a classifier. Drop it, or "
                          "choose `model` conv_autoencoder or denoising_autoencoder.")
    label_settings = [f"{name}={getattr(config, name)!r}" for name in ("mixup", "cutmix", "balance")
                      if getattr(config, name) not in (0.0, "none")]
    if reconstructs and label_settings:
        raise ConfigError(f"{config.model!r} is an autoencoder, trained without labels: {', '.join(label_settings)} "
                          "mix or weigh classes and do not apply. Drop them.")
    if reconstructs and (config.pretrained or config.weights):
        raise ConfigError(f"{config.model!r} is an autoencoder that trains from scratch: `pretrained` and `weights` "
                          "load a backbone's weights and do not apply. Drop them.")


def pretrained_backbone(config: TrainConfig) -> tuple[dict, str]:
    """The backbone's pretrained state dict and where it came from."""
    from cnnkit.models import create_model
    from cnnkit.models.pretrained import load_pretrained

    model = create_model(config.model, 2, 3, **config.model_options)
    source = load_pretrained(model, config.model, config.weights)["source"]
    return model.backbone_state_dict(), source


def _first_record(prepared, config: TrainConfig, run: RunFolder, counts: dict,
                  task: str = "classify") -> tuple[RunRecord, object]:
    """The record a run starts with (status "training") and its split, the data root relative when inside the run."""
    manifest = replace(prepared.manifest, root=run.portable_root(prepared.manifest.root))
    model = ModelSpec(config.model, len(prepared.classes), prepared.preprocessing.channels,
                      config.network_options, config.init)
    record = RunRecord(model=model, classes=tuple(prepared.classes), preprocessing=prepared.preprocessing,
                       multi_label=prepared.multi_label,
                       data=DataRecord(manifest.root, manifest.layout, counts, tuple(prepared.skipped),
                                       prepared.dropped or None, tuple(prepared.conflicting)),
                       training=config, balance=BalanceRecord(**balance_record(config.balance, counts["train"])),
                       task=task)
    return record, manifest


@with_options(TrainConfig)
def train(data_dir: str | Path, out_dir: str | Path, config: TrainConfig | None = None,
          progress: bool = True, overwrite: bool = False, time_limit: float | None = None,
          callbacks: list | None = None) -> TrainedRun:
    """Train ``config.model`` on ``data_dir``; the run folder ``out_dir`` gets the record, split, weights and logs.

    Refuses an ``out_dir`` that already holds a run, unless ``overwrite`` (its run files are replaced; other files
    in the folder, such as data kept inside it, stay). Every epoch ends with a checkpoint: see ``resume``.
    ``time_limit`` (seconds): each epoch-trained phase stops at the first batch end past it, keeping the best weights
    so far (``--auto``'s budget). ``callbacks``: Lightning callbacks of your own, added to every epoch-trained phase.
    """
    config = config or TrainConfig()
    if time_limit is not None and not time_limit > 0:
        raise ConfigError(f"Expected `time_limit` > 0 seconds. Received: time_limit={time_limit}")
    run = RunFolder(out_dir)
    main = _distributed_role(config)
    progress = progress and main
    if main:
        refuse_occupied(run, overwrite)
    check_accelerator(config.accelerator)
    config = choose_model(data_dir, config)
    probe = probe_model(config)
    pretrained = pretrained_backbone(config) if config.pretrained else None  # missing weights fail now, too
    if config.unlabelled:
        pool_files(config.unlabelled)  # a missing or empty pool fails before any image is decoded
    with claimed(run, overwrite, main):
        prepared, config = prepare_data(data_dir, config, probe, progress)
        record, manifest = _first_record(prepared, config, run, split_counts(prepared.splits, prepared.classes),
                                         "reconstruct" if probe.reconstructs else "classify")
        if main:
            run.write_split(manifest)
            run.write_record(record)
        return _fit(run, record, prepared.splits, ckpt_path=None, progress=progress, pretrained=pretrained,
                    time_limit=time_limit, callbacks=callbacks)


def _distributed_role(config: TrainConfig) -> bool:
    """Whether this process is the main one (it writes the run folder); the others log warnings only. Settings
    that cannot be shared between processes are refused here, before any image is decoded."""
    if world_size(config) > 1 and config.balance == "oversample":
        raise ConfigError("`balance` oversample draws images with one process's sampler; with several processes "
                          "(`devices`, `num_nodes`) use balance='weights'.")
    main = is_main(config.devices)
    if not main:
        log.setLevel(logging.WARNING)
    return main


def prepare_data(data_dir, config: TrainConfig, probe, progress: bool = False):
    """The data decoded, split and standardised as ``config`` and the model (``probe``, ``probe_model``'s) ask, and
    ``config`` with what the data decided (oversampling's augmentation). Also ``lr_find``'s: it sweeps on the same."""
    data = model_data(config)
    prepared = prepare_training_data(
        data_dir, image_size=data.image_size, channels=data.channels, interpolation=data.interpolation,
        crop_pct=data.crop_pct, normalization=data.normalization, val_fraction=config.val_fraction,
        test_fraction=config.test_fraction, seed=config.seed, skip_bad=config.skip_bad, data_in=config.data_in,
        progress=progress, dedupe=config.dedupe, unlabelled=probe.reconstructs, val_folder=config.val_folder,
    )
    if len(prepared.splits["val"]) == 0:
        raise DataError(f"No validation images in {data_dir}: add a val/ folder or raise `val_fraction`.")
    if prepared.multi_label and not probe.reconstructs:
        _check_multi_label(config)
    report_counts(split_counts(prepared.splits, prepared.classes))
    side = max(prepared.preprocessing.image_size)
    if (not probe.has_backbone and not probe.reconstructs and prepared.preprocessing.channels == 3
            and prepared.median_side >= max(128, 2 * side)):
        log.warning("These look like photographs (median shorter side %d px, trained at %dx%d px, width x height): "
                    "with few images a pretrained backbone usually does far better than a CNN from scratch. Try "
                    "`model` efficientnet_lite0 with `pretrained`, or `auto` to compare both within a time budget.",
                    prepared.median_side, *reversed(prepared.preprocessing.image_size))
    if config.balance == "oversample" and not config.augment:
        config = config.replace(augment=OVERSAMPLE_DEFAULT)
        log.info("Oversampling without `augment`: repeated images get '%s' so that copies differ.",
                 OVERSAMPLE_DEFAULT)
    return prepared, config


def _check_multi_label(config: TrainConfig) -> None:
    """Settings that assume one class per image, refused on a multi-label set before any training (``choose_model``
    refuses them earlier still: ``training.defaults.refuse_for_multi_label_data``)."""
    refuse_one_class_settings(config)
    log.info("Multi-label: one sigmoid per class and binary cross-entropy; a threshold per class is chosen on the "
             "validation split after training.")


RESUMABLE_CHANGES = ("epochs", "finetune_epochs", "devices", "num_nodes", "distributed", "workers", "data_in")


def _resumed_config(run: RunFolder, record: RunRecord, changes: dict) -> TrainConfig:
    """The run's settings with ``changes``; only more epochs may differ from what the run was trained with."""
    from dataclasses import fields

    wanted = TrainConfig(**{**record.training.to_dict(), **changes})
    contradicting = [f"{f.name}={getattr(wanted, f.name)!r} (the run has {getattr(record.training, f.name)!r})"
                     for f in fields(TrainConfig) if f.name not in RESUMABLE_CHANGES
                     and getattr(wanted, f.name) != getattr(record.training, f.name)]
    if contradicting:
        raise ConfigError(f"Resuming continues {run.path} with its own settings; these differ: "
                          f"{', '.join(contradicting)}. Resume without them, or start afresh with `overwrite`.")
    return wanted


def _check_epochs(run: RunFolder, config: TrainConfig) -> None:
    """The checkpoint must be readable, and the epochs asked for at least those its phase already ran."""
    from cnnkit.training.phases import plan_phases, read_progress

    progress = read_progress(run.last_checkpoint)
    phases = plan_phases(config)
    if progress["phase_index"] >= len(phases):
        raise RunError(f"The checkpoint of {run.path} is from phase {progress['phase_index'] + 1}, and the run has "
                       f"{len(phases)}.")
    phase = phases[progress["phase_index"]]
    ran = sum(1 for row in progress.get("history") or [] if row.get("phase") == phase.name)
    if phase.epochs < ran:
        name = "epochs" if progress["phase_index"] == 0 else "finetune_epochs"
        raise ConfigError(f"{run.path} already ran {ran} epochs of its {phase.name} phase; `{name}`={phase.epochs} "
                          "would undo them. Ask for at least as many, or start afresh with `overwrite`.")


def resume(run_dir: str | Path, epochs: int | None = None, progress: bool = True,
           changes: dict | None = None) -> TrainedRun:
    """Continue a run from ``checkpoints/last.ckpt`` (written after every epoch) with its saved record and split, in
    the phase and epoch where it stopped, with the optimiser, schedule, best-so-far and random state it had.

    ``epochs`` (or ``changes={"finetune_epochs": N}``) raises the number of epochs, to train a finished run further;
    any other setting in ``changes`` that differs from the run's is refused.
    """
    run = RunFolder(run_dir)
    record = run.read_record()
    if record.finds_points:
        return _resume_points(run, progress, {**(changes or {}), **({"epochs": epochs} if epochs is not None else {})})
    if record.training is None:
        raise RunError(f"Run {run.path} is a baseline; there is no training to resume.")
    changes = {**(changes or {}), **({"epochs": epochs} if epochs is not None else {})}
    config = _resumed_config(run, record, changes)
    more_epochs = config != record.training
    if record.status == "finished" and not more_epochs:
        raise RunError(f"Run {run.path} is finished; there is nothing to resume. Raise `epochs` to train it further.")
    if not run.last_checkpoint.exists():
        raise RunError(f"Run {run.path} has no checkpoint to resume from ({run.last_checkpoint} is missing: it "
                       "stopped before its first epoch ended). Start afresh with `overwrite`.")
    _check_epochs(run, config)  # a damaged checkpoint or too few epochs fail here, before anything changes
    main = _distributed_role(config)
    progress = progress and main
    with continuing(run, main):
        record = record.replace(training=config, status="training", status_reason=None)
        stale = remove_outputs(run, EVALUATION_OUTPUTS) if main else []
        if stale:
            log.info("Removed the earlier evaluation of %s (%s): it describes weights that training will change.",
                     run.path, ", ".join(stale))
        if main:
            run.write_record(record)
        manifest = run.read_split()
        pre = record.preprocessing
        disk = on_disk(config.data_in, sum(map(len, manifest.splits.values())), pre.image_size, pre.channels)
        splits = {name: load_samples(run.data_root(manifest), samples, list(record.classes), pre,
                                     multi_label=record.multi_label, disk_cache=disk)
                  for name, samples in manifest.splits.items()}
        return _fit(run, record, splits, ckpt_path=run.last_checkpoint, progress=progress, more_epochs=more_epochs)


def _resume_points(run: RunFolder, progress: bool, changes: dict) -> TrainedRun:
    from cnnkit.training.points import resume_points

    other = sorted(k for k, v in changes.items() if k != "epochs" and v is not None)
    if other:
        raise ConfigError(f"{run.path} is a point detector's run; it resumes with its own settings: drop "
                          f"{', '.join(f'`{k}`' for k in other)}.")
    return resume_points(run.path, progress, changes.get("epochs"))


def _fit(run: RunFolder, record: RunRecord, splits: dict[str, ImageArrays], ckpt_path: Path | None, progress: bool,
         pretrained: tuple[dict, str] | None = None, more_epochs: bool = False,
         time_limit: float | None = None, callbacks: list | None = None) -> TrainedRun:
    import lightning as L

    from cnnkit.models.init import init_weights
    from cnnkit.training.phases import PhaseRunner, quiet_lightning

    quiet_lightning()
    L.seed_everything(record.training.seed, workers=True, verbose=False)
    model = init_weights(record.build_network(), record.training.init)
    if hasattr(model, "flip_average"):  # what the user asked; a solved head's choice is restored from its phase
        model.flip_average = bool(record.training.model_options.get("flip_average"))
    if pretrained is not None:
        model.load_backbone_state_dict(pretrained[0])
        record = record.replace(pretrained_source=pretrained[1])
        log.info("Backbone weights: %s", pretrained[1])
    runner = PhaseRunner(run, record, splits, model, progress, time_limit, callbacks)
    try:
        result = runner.run_all(ckpt_path, more_epochs)
    except BaseException:
        if runner.feature_cache is not None and runner.main:
            run.write_record(record.replace(feature_cache=runner.feature_cache))
        raise
    options = {k: v for k, v in record.model.options.items() if k != "flip_average"}
    if getattr(model, "flip_average", False):  # the record builds the network that made the weights
        options["flip_average"] = True
    record = record.replace(model=replace(record.model, options=options))
    if record.reconstructs and runner.main:  # the anomaly thresholds, from the validation split only
        from cnnkit.training.autoencoder import reconstruction_record

        record = record.replace(reconstruction=reconstruction_record(run, record, splits["val"]))
    elif record.multi_label and runner.main:
        record = record.replace(label_thresholds=_label_thresholds(run, record, splits["val"]))
    record = record.replace(status="finished", result=result, feature_cache=runner.feature_cache)
    if runner.main:
        run.write_record(record)
    return TrainedRun(run.path, record)


def _label_thresholds(run: RunFolder, record: RunRecord, val: ImageArrays) -> Thresholds:
    """A multi-label run's threshold per class, best F1 on the validation split with the kept weights."""
    from cnnkit.inference.network import NetworkPredictor

    predictor = NetworkPredictor.from_record(run, record)
    chosen = label_thresholds(predictor.predict_arrays(val.images), val.labels, list(record.classes))
    log.info("Thresholds per class (best F1 on validation): %s",
             ", ".join(f"{c} {t:.2f}" for c, t in chosen.per_class.items()))
    return chosen
