"""Training phases on Lightning: one for a network trained whole, the head then the backbone for fine-tuning."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from cnnkit.config import TrainConfig
from cnnkit.data.prepare import ImageArrays
from cnnkit.run import RunFolder, RunRecord, TrainingResult
from cnnkit.run.record import FeatureCacheRecord, PhaseRecord
from cnnkit.training.csv_log import merge_csv_log, read_text

log = logging.getLogger("cnnkit")


@dataclass(frozen=True)
class Phase:
    name: str
    epochs: int
    trainable_stages: int  # of a backbone: 0 frozen, -1 all; cnnkit's own networks always train whole
    backbone_lr: float | None = None


def plan_phases(config: TrainConfig) -> list[Phase]:
    """scratch: one phase, everything trains. transfer: the head on a frozen backbone. finetune: that, then the last
    ``unfreeze`` stages (or all) with ``finetune_lr``."""
    if config.strategy == "scratch":
        return [Phase("train", config.epochs, -1)]
    head = Phase("head", config.epochs, 0)
    if config.strategy == "transfer":
        return [head]
    return [head, Phase("finetune", config.finetune_epochs, config.unfreeze or -1, config.finetune_lr)]


def quiet_lightning() -> None:
    """Keep Lightning's banner lines (accelerators, tips) out of the user's terminal; warnings still show."""
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*Experiment logs directory.*")
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")  # frozen backbones, on purpose


def create_trainer(run: RunFolder, config: TrainConfig, phase: Phase, callbacks: list, progress: bool,
                   tb_version: str):
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    if config.strategy == "scratch":  # the checkpoint serves resume, which only whole-network training supports
        callbacks = [*callbacks, ModelCheckpoint(dirpath=run.checkpoint_dir, save_last=True, save_top_k=0,
                                                enable_version_counter=False)]
    if config.early_stopping:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=config.early_stopping))
    return L.Trainer(
        max_epochs=phase.epochs, accelerator=config.accelerator, devices=1, deterministic=True,
        enable_checkpointing=config.strategy == "scratch",
        callbacks=callbacks, enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
        logger=[CSVLogger(run.path, name="logs", version=""),
                TensorBoardLogger(run.path, name="logs", version=tb_version)],
        log_every_n_steps=1,
    )


class PhaseRunner:
    """Runs the phases of one training into a run folder: the best weights go to ``model.safetensors`` as they
    come, the epochs to ``logs/metrics.csv``; returns the record's result."""

    def __init__(self, run: RunFolder, record: RunRecord, splits: dict[str, ImageArrays], model, progress: bool):
        from cnnkit.training.balance import oversampler
        from cnnkit.training.callbacks import BestWeights, EpochTimer

        self.run, self.record, self.splits, self.model, self.progress = run, record, splits, model, progress
        self.config: TrainConfig = record.training
        weights = record.balance.class_weights
        self.class_weights = list(weights.values()) if record.balance.mode == "weights" and weights else None
        self.sampler = (oversampler(splits["train"].labels, len(record.classes), self.config.seed)
                        if self.config.balance == "oversample" else None)
        self.best, self.timer = BestWeights(run.weights_path), EpochTimer()
        self.feature_cache: FeatureCacheRecord | None = record.feature_cache

    def run_all(self, ckpt_path: Path | None) -> TrainingResult:
        from cnnkit.weights import load_weights

        start, epochs_before, phases = time.perf_counter(), 0, []
        earlier_log = read_text(self.run.log_dir / "metrics.csv") if ckpt_path else ""
        for i, phase in enumerate(plan_phases(self.config)):
            if i > 0:
                load_weights(self.model, self.run.weights_path)  # the next phase starts from the best weights so far
                earlier_log = read_text(self.run.log_dir / "metrics.csv")
            epochs = self._run_phase(phase, i, epochs_before, ckpt_path)
            if earlier_log:
                merge_csv_log(self.run.log_dir / "metrics.csv", earlier_log, epoch_offset=epochs_before if i else 0)
            phases.append(PhaseRecord(phase.name, epochs, sum(p.numel() for p in self.model.parameters()
                                                              if p.requires_grad), phase.backbone_lr))
            epochs_before += epochs
        before = self.record.result.train_seconds if self.record.result else 0.0
        return TrainingResult(
            best_epoch=self.best.best_epoch, best_val_loss=self.best.best_score,
            best_val_acc=self.best.best_metrics.get("val_acc"), epochs_run=epochs_before,
            train_seconds=round(time.perf_counter() - start + before, 2),
            epoch_seconds=tuple(round(t, 4) for t in self.timer.seconds), phases=tuple(phases))

    def _loaders(self):
        from cnnkit.training.loaders import feature_loaders, image_loaders

        loaders = None
        if self.model.frozen:
            loaders, self.feature_cache = feature_loaders(self.model, self.splits, self.config,
                                                          self.record.preprocessing, self.sampler, self.progress)
            if self.feature_cache.used:
                log.info("Feature cache: %d computed, %d reused (%s)", self.feature_cache.computed,
                         self.feature_cache.reused, self.feature_cache.directory)
        return loaders or image_loaders(self.splits, self.config, self.sampler)

    def _run_phase(self, phase: Phase, index: int, epochs_before: int, ckpt_path: Path | None) -> int:
        from cnnkit.training.module import ClassifierModule

        self.model.set_trainable_stages(phase.trainable_stages)
        loaders = self._loaders()
        on_features = bool(self.model.frozen and self.feature_cache and self.feature_cache.used)
        module = ClassifierModule(self.model, self.config, self.record.preprocessing,
                                  class_weights=self.class_weights, features=on_features,
                                  backbone_lr=phase.backbone_lr, epochs=phase.epochs)
        self.best.epoch_offset = epochs_before
        trainer = create_trainer(self.run, self.config, phase, [self.best, self.timer], self.progress,
                                 "" if index == 0 else phase.name)
        trainer.fit(module, *loaders, ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)
        return trainer.current_epoch
