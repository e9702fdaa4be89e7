"""Training phases on Lightning: one for a network trained whole, the head then the backbone for fine-tuning.

Every epoch ends with a checkpoint of the whole state (``callbacks.EpochCheckpoint``), so a killed run resumes in the
phase and epoch where it stopped, with the optimiser, schedule, best-so-far, history and random state it had.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from cnnkit.config import TrainConfig
from cnnkit.data.prepare import ImageArrays
from cnnkit.errors import ConfigError, RunError
from cnnkit.models.linear_head import choose_by_cv, fit_softmax, flips_keep_labels, log_loss
from cnnkit.models.precision import bf16_supported
from cnnkit.run import RunFolder, RunRecord, TrainingResult
from cnnkit.run.record import FeatureCacheRecord, PhaseRecord
from cnnkit.run.results import SolverResult
from cnnkit.training.balance import oversampler
from cnnkit.training.distributed import is_main, lightning_strategy
from cnnkit.training.loaders import feature_loaders, generators, image_loaders, mirrored_features, split_features
from cnnkit.training.self_training import pool_features, self_train
from cnnkit.weights import load_weights

log = logging.getLogger("cnnkit")


@dataclass(frozen=True)
class Phase:
    name: str
    epochs: int
    trainable_stages: int  # of a backbone: 0 frozen, -1 all; cnnkit's own networks always train whole
    backbone_lr: float | None = None
    augment: str | None = None  # None: the run's own setting
    precision: str = "32"


FINETUNE_AUGMENT = "translate=0.05,zoom=0.1"  # label-preserving for photos, wafer maps and digits alike


def plan_phases(config: TrainConfig, flip: bool = False) -> list[Phase]:
    """scratch: one phase, everything trains. transfer: the head on a frozen backbone. finetune: that, then the last
    ``unfreeze`` stages (or all) with ``finetune_lr``, augmented by default (with flips when the head's check found
    them label-preserving: ``flip``), in bf16 where it runs natively (``precision`` auto)."""
    if config.strategy == "scratch":
        return [Phase("train", config.epochs, -1)]
    head = Phase("head", config.epochs, 0)
    if config.strategy == "transfer":
        return [head]
    augment = config.augment or (f"flip,{FINETUNE_AUGMENT}" if flip else FINETUNE_AUGMENT)
    precision = "bf16" if config.precision == "bf16" or (
        config.precision == "auto" and bf16_supported(config.accelerator)) else "32"
    return [head, Phase("finetune", config.finetune_epochs, config.unfreeze or -1, config.finetune_lr, augment,
                        precision)]


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
                   tb_version: str, time_limit: float | None = None):
    from datetime import timedelta

    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping
    from lightning.pytorch.loggers import TensorBoardLogger

    if config.early_stopping:
        callbacks = [*callbacks, EarlyStopping(monitor="val_loss", patience=config.early_stopping)]
    if progress:
        from cnnkit.training.callbacks import stderr_progress_bar

        callbacks = [*callbacks, stderr_progress_bar()]
    return L.Trainer(
        max_epochs=phase.epochs, accelerator=config.accelerator, devices=config.devices, num_nodes=config.num_nodes,
        strategy=lightning_strategy(config), use_distributed_sampler=False,  # cnnkit shards the data itself
        deterministic=True,
        precision="bf16-mixed" if phase.precision == "bf16" else "32-true",
        enable_checkpointing=False, callbacks=callbacks, enable_progress_bar=progress, enable_model_summary=False,
        num_sanity_val_steps=0, logger=TensorBoardLogger(run.path, name="logs", version=tb_version),
        log_every_n_steps=1, max_time=None if time_limit is None else timedelta(seconds=max(1.0, time_limit)),
    )


def _load(checkpoint: Path) -> dict:
    """A Lightning checkpoint's contents, loaded without running code; RunError naming the file when damaged."""
    import pickle

    import torch

    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as e:
        raise RunError(f"The checkpoint {checkpoint} is damaged ({type(e).__name__}: {str(e)[:120]}); the run "
                       "cannot be resumed from it. Start afresh with `overwrite`.") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise RunError(f"{checkpoint} is not a checkpoint of a cnnkit training.")
    return state


def read_progress(checkpoint: Path) -> dict:
    """What a checkpoint says of the training's progress: the phase index, the phases done before it, whether its
    phase was complete (and its record), the history rows and the best-so-far state."""
    state = _load(checkpoint)
    callbacks = [v for v in state.get("callbacks", {}).values() if isinstance(v, dict)]

    def find(key: str) -> dict:
        return next((v for v in callbacks if key in v), {})

    progress = {"phase_index": 0, "phases_done": [], "phase_record": None,
                **find("phase_index")}  # a checkpoint of cnnkit 0.1.0 holds one whole-network phase
    return {**progress, "history": find("rows").get("rows"), "best": find("best_score") or None}


def load_checkpoint_weights(model, checkpoint: Path) -> None:
    """The network's weights from a Lightning checkpoint of ``ClassifierModule`` (keys ``model.*``)."""
    state = _load(checkpoint)["state_dict"]
    model.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})


def _checked_callbacks(callbacks: list | None) -> list:
    """The user's Lightning callbacks; refused: those that would fight cnnkit's own checkpoints and progress."""
    from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar

    for callback in callbacks or []:
        if isinstance(callback, (ModelCheckpoint, ProgressBar)):
            raise ConfigError(f"`callbacks`: {type(callback).__name__} is refused: cnnkit checkpoints every epoch "
                              "itself (checkpoints/last.ckpt, model.safetensors) and draws its own progress.")
    return list(callbacks or [])


class PhaseRunner:
    """Runs the phases of one training into a run folder: the best weights go to ``model.safetensors`` as they
    come, the epochs to ``logs/metrics.csv``, the state to ``checkpoints/last.ckpt``; returns the record's result."""

    def __init__(self, run: RunFolder, record: RunRecord, splits: dict[str, ImageArrays], model, progress: bool,
                 time_limit: float | None = None, callbacks: list | None = None):
        from cnnkit.training.callbacks import BestWeights

        self.run, self.record, self.splits, self.model, self.progress = run, record, splits, model, progress
        self.config: TrainConfig = record.training
        weights = record.balance.class_weights
        self.class_weights = list(weights.values()) if record.balance.mode == "weights" and weights else None
        self.sampler = (oversampler(splits["train"].labels, len(record.classes), self.config.seed)
                        if self.config.balance == "oversample" else None)
        self.main = is_main(self.config.devices)  # only the main process writes (distributed training)
        self.best = BestWeights(run.weights_path, writes=self.main)
        self.feature_cache: FeatureCacheRecord | None = record.feature_cache
        self.history: list[dict] = []
        self.deadline = time.monotonic() + time_limit if time_limit is not None else None
        self.user_callbacks = _checked_callbacks(callbacks)

    def run_all(self, resume_from: Path | None, more_epochs: bool = False) -> TrainingResult:
        """Run the phases, from the start or from the checkpoint ``resume_from``; a phase that checkpoint marks
        complete is skipped unless ``more_epochs`` (a finished run trained further)."""
        from cnnkit.training.callbacks import set_random_state

        start = time.perf_counter()
        progress = read_progress(resume_from) if resume_from else {"phase_index": 0, "phases_done": []}
        done = [PhaseRecord.from_dict(p) for p in progress["phases_done"]]
        self.history = progress.get("history") or []
        if progress.get("best"):
            self.best.load_state_dict(progress["best"])
        if resume_from:  # the weights before anything runs on them (the feature cache is keyed by the backbone's)
            load_checkpoint_weights(self.model, resume_from)
            if self.finetuned_weights.exists():  # it fell back to the head: the best-so-far is the fine-tuned one
                os.replace(self.finetuned_weights, self.run.weights_path)
        for i in range(len(plan_phases(self.config))):
            if i < progress["phase_index"]:
                continue
            phase = plan_phases(self.config, flip=bool(done and done[0].solver and done[0].solver.mirror_helps))[i]
            checkpoint = resume_from if i == progress["phase_index"] else None
            finished = progress.get("phase_record") if checkpoint else None
            if finished and not more_epochs:  # complete: the next phase starts from the state this one ended in
                done.append(PhaseRecord.from_dict(finished))
                if done[-1].solver and done[-1].solver.flip_average:
                    self.model.flip_average = True  # the solved head's features
                set_random_state(progress["random"])
                continue
            if i > 0 and checkpoint is None:
                load_weights(self.model, self.run.weights_path)  # the next phase starts from the best weights so far
            done.append(self._run_phase(phase, i, sum(p.epochs_run for p in done), done, checkpoint))
        if self.config.strategy == "finetune" and len(done) == 2 and done[0].solver:
            done = self._settle_finetuning(done)
        if not self.run.weights_path.exists():
            from cnnkit.errors import RunError

            raise RunError("No epoch ended with a finite validation loss, so no weights were kept; lower `lr` or "
                           "check the data.")
        before = (self.record.result.train_seconds if self.record.result
                  else sum(row["seconds"] for row in progress.get("history") or []))  # a killed run's epochs
        return TrainingResult(
            best_epoch=self.best.best_epoch, best_val_loss=self.best.best_score,
            best_val_acc=self.best.best_metrics.get("val_acc"), epochs_run=sum(p.epochs_run for p in done),
            train_seconds=round(time.perf_counter() - start + before, 2),
            epoch_seconds=tuple(r["seconds"] for r in self.history), phases=tuple(done))

    @property
    def head_weights(self) -> Path:
        return self.run.path / "checkpoints" / "head.safetensors"

    @property
    def finetuned_weights(self) -> Path:
        return self.run.path / "checkpoints" / "finetuned.safetensors"

    def _settle_finetuning(self, done: list[PhaseRecord]) -> list[PhaseRecord]:
        """Fine-tuning is kept when its kept epoch classifies more validation images right than the solved head;
        otherwise (ties included: the simpler model) the run falls back to what a transfer run would be,
        the head on the pretrained backbone re-solved on train+val (mirror averaging when it helps), and says so."""
        import math

        from cnnkit.training.callbacks import BestWeights

        head_acc = next(r["val_acc"] for r in self.history if str(r["phase"]).startswith("head"))
        tuned = self.best.best_metrics.get("val_acc") if self.best.best_epoch >= done[0].epochs_run else None
        half_an_image = 0.5 / max(1, len(self.splits["val"]))  # at least one more image right (float32 metrics)
        if tuned is not None and tuned > head_acc + half_an_image:
            log.info("Fine-tuning kept: validation accuracy %.4f against the solved head's %.4f.", tuned, head_acc)
            return done
        if not self.head_weights.exists():  # a run begun before fine-tuning could fall back
            return done
        log.info("Fine-tuning did not beat the solved head on validation (accuracy %s against %.4f): falling back "
                 "to the head on the pretrained backbone, re-solved on train+val as a transfer run.",
                 "n/a" if tuned is None else f"{tuned:.4f}", head_acc)
        if self.main and self.run.weights_path.exists():  # the fine-tuned best, for a resume that trains it further
            os.replace(self.run.weights_path, self.finetuned_weights)
        load_weights(self.model, self.head_weights)
        self.model.set_trainable_stages(0)
        self.best = BestWeights(self.run.weights_path, writes=self.main)
        self.best.best_score = math.inf
        train, val = self._features()
        epochs = sum(p.epochs_run for p in done)
        fallback = self._solve_head(Phase("head (fallback)", 1, 0), len(done), epochs, done, train, val, final=True)
        return [*done, replace(fallback, fallback=True)]

    def _features(self):
        """The cached features of train and val when the backbone is frozen and the cache applies, else Nones."""
        if not self.model.frozen:
            return None, None
        train, val, self.feature_cache = split_features(self.model, self.splits, self.config,
                                                        self.record.preprocessing, self.progress)
        if self.feature_cache.used:
            log.info("Feature cache: %d computed, %d reused (%s)", self.feature_cache.computed,
                     self.feature_cache.reused, self.feature_cache.directory)
        return train, val

    def _loaders(self, train, val):
        if train is not None:
            return feature_loaders(train, val, self.splits, self.config, self.sampler)
        return image_loaders(self.splits, self.config, self.sampler)

    def _solves_head(self, train) -> bool:
        """Whether the head is a convex problem on cached features: then it is solved, not trained."""
        config = self.config
        return (config.head_solver != "epochs" and not self.record.multi_label and train is not None
                and train.shape[1] == 1
                and not config.model_options.get("hidden") and not config.mixup and not config.cutmix)

    def _mirror_averaged(self, x, y) -> tuple | None:
        """Features averaged with those of the mirror image (flipped left to right), their C by cross-validation on
        train+val and its scores; None when the network already averages them."""

        if getattr(self.model, "flip_average", False):
            return None
        averaged = (x + mirrored_features(self.model, self.splits, self.record.preprocessing, self.progress,
                                          self.main)) / 2
        return averaged, *choose_by_cv(averaged, y, len(self.record.classes), seed=self.config.seed,
                                       class_weights=self.class_weights)

    def _mirror_helps(self, x, y, C: float, scores: list[dict], averaged: tuple) -> bool:
        """Whether the features averaged with the mirror image's are kept: flips keep the class (a head classifies
        mirror images as well) and cross-validation prefers them."""
        best, averaged_best = max(s["cv_acc"] for s in scores), max(s["cv_acc"] for s in averaged[2])
        keeps = flips_keep_labels(x, 2 * averaged[0] - x, y, len(self.record.classes), C, self.class_weights)
        helps = keeps and averaged_best > best
        log.info("Features averaged with the mirror image's: cross-validated accuracy %.4f (plain %.4f): flips %s.",
                 averaged_best, best, "help" if helps else "do not help" if keeps else
                 "change the class (a mirror image is classified worse): not used")
        return helps

    def _solve_head(self, phase: Phase, index: int, epochs_before: int, done: list[PhaseRecord], train,
                    val, final: bool = False) -> PhaseRecord:
        """The linear head at the optimum of the regularised cross-entropy, C chosen by cross-validation on train+val
        (the probe's choice); fitted on train+val when it is the run's last phase, else on train (validation then
        stays unseen for the fine-tuning that follows). The run's last phase also tries features averaged with the
        mirror image's, and keeps them when cross-validation prefers them."""
        import numpy as np
        import torch

        from cnnkit.training.callbacks import History, save_solved_phase

        start = time.perf_counter()
        x = np.concatenate([train[:, 0].numpy(), val[:, 0].numpy()])
        y = np.concatenate([self.splits["train"].labels, self.splits["val"].labels])
        n, classes = len(train), len(self.record.classes)
        last = final or index == len(plan_phases(self.config)) - 1
        C, scores = choose_by_cv(x, y, classes, seed=self.config.seed, class_weights=self.class_weights)
        averaged = self._mirror_averaged(x, y)
        mirror = averaged is not None and self._mirror_helps(x, y, C, scores, averaged)
        flip = mirror and last  # fine-tuning instead draws flips as augmentation
        if flip:
            x, C, scores = averaged
        x, y, pool = self._with_pool(x, y, C, scores, flip) if last and self.config.unlabelled else (x, y, None)
        fit, _ = fit_softmax(x if last else x[:n], y if last else y[:n], classes, C, self.class_weights)
        with torch.no_grad():
            self.model.classifier.weight.copy_(torch.from_numpy(fit.weight))
            self.model.classifier.bias.copy_(torch.from_numpy(np.maximum(fit.bias, -1e4)))
        self.model.flip_average = self.model.flip_average or flip
        chosen = next(s for s in scores if s["C"] == C)
        if pool and pool.kept:  # the labelled images held out of the folds, classified after self-training
            kept = pool.rounds[pool.kept_rounds]
            chosen = {**chosen, "cv_loss": kept.val_loss, "cv_acc": kept.val_accuracy}
        val_metrics = ({"val_loss": chosen["cv_loss"], "val_acc": chosen["cv_acc"]} if last else  # held-out folds
                       {"val_loss": log_loss(fit, x[n:], y[n:], self.class_weights),
                        "val_acc": float((fit.probabilities(x[n:]).argmax(1) == y[n:]).mean())})
        self.best.offer(self.model, epochs_before, val_metrics)
        self.history = [*self.history, {"epoch": epochs_before, "phase": f"{phase.name} (L-BFGS, C={C:.3g})",
                                        "train_loss": None, "train_acc": None, **val_metrics, "lr": None,
                                        "seconds": round(time.perf_counter() - start, 4)}]
        History(self.run.log_dir / "metrics.csv", phase.name, epochs_before, self.history, self.main).write()
        if not fit.converged:
            log.warning("The head's solver stopped before converging (C=%g).", C)
        log.info("Head fitted to the optimum: C=%g by %d-fold cross-validation on train+val (accuracy %.4f), fitted "
                 "on %s, %.1f s.", C, chosen["folds"], chosen["cv_acc"], "train+val" if last else "train",
                 time.perf_counter() - start)
        record = PhaseRecord(phase.name, 1, self.model.classifier.weight.numel() + self.model.classifier.bias.numel(),
                             solver=SolverResult.from_dict({
                                 "method": "lbfgs", "C": C, "iterations": fit.iterations, "converged": fit.converged,
                                 "chosen_by": "cross-validation on train+val", "fitted_on": "train+val" if last else
                                 "train", "flip_average": flip, "mirror_helps": mirror, "grid": scores,
                                 "self_training": pool}))
        if not final and self.main:  # a fallback happens after the last checkpoint, and again if the run is resumed
            save_solved_phase(self.run.last_checkpoint, self.model, index, [asdict(p) for p in done], asdict(record),
                              self.history, self.best)
        if not last and self.main:  # fine-tuning follows: the head on the pretrained backbone, its fallback
            from cnnkit.weights import save_weights

            save_weights(self.model, self.head_weights)
        return record

    def _with_pool(self, x, y, C: float, scores: list[dict], flip: bool) -> tuple:
        """``unlabelled``: the features and labels the head is fitted on, with the pool's pseudo-labels when
        cross-validation on the labelled images keeps them, and the record of the rounds; pool.json is written."""
        features, manifest = pool_features(self.model, self.config.unlabelled, self.splits,
                                           self.record.preprocessing, flip, self.progress, self.main)
        folds = next(s for s in scores if s["C"] == C)["folds"]
        trained = self_train(x, y, features, manifest, list(self.record.classes), C, folds, self.config.seed,
                             self.class_weights)
        if self.main:
            self.run.write_pool(trained.manifest)
        log.info("Pool: %d images, up to %d pseudo-labels a round; %s.", trained.record.images,
                 max(r.pseudo_labels for r in trained.record.rounds), trained.record.reason)
        return trained.x, trained.y, trained.record

    def _run_phase(self, phase: Phase, index: int, epochs_before: int, done: list[PhaseRecord],
                   checkpoint: Path | None) -> PhaseRecord:
        import torch

        from cnnkit.training.callbacks import EpochCheckpoint, EpochLines, History, stderr_is_terminal
        from cnnkit.training.module import ClassifierModule

        self.model.set_trainable_stages(phase.trainable_stages)
        train, val = self._features()
        channels_last = self.model.has_backbone and not self.model.frozen
        if channels_last:  # measured 1.7-2x faster for a trainable backbone on CPU (benchmarks/finetune_speed.py)
            self.model.keep_batch_norm_frozen = phase.name == "finetune"
            self.model.to(memory_format=torch.channels_last)
        if phase.trainable_stages == 0 and self._solves_head(train):
            return self._solve_head(phase, index, epochs_before, done, train, val)
        loaders = self._loaders(train, val)
        # Lightning keeps each submodule's mode as it finds it: train mode here (frozen parts stay in inference mode,
        # see TransferNet.train), the same whether the phase starts afresh, after another phase or from a checkpoint.
        self.model.train()
        on_features = train is not None
        if self.model.reconstructs:  # an autoencoder: labels ignored, the image is the target
            from cnnkit.training.autoencoder import ReconstructionModule

            module = ReconstructionModule(self.model, self.config, self.record.preprocessing, epochs=phase.epochs,
                                          augment=phase.augment)
        else:
            module = ClassifierModule(self.model, self.config, self.record.preprocessing,
                                      class_weights=self.class_weights, features=on_features,
                                      backbone_lr=phase.backbone_lr, epochs=phase.epochs, augment=phase.augment,
                                      channels_last=channels_last, warmup=phase.name == "finetune",
                                      multi_label=self.record.multi_label)
        self.best.epoch_offset = epochs_before
        history = History(self.run.log_dir / "metrics.csv", phase.name, epochs_before, self.history, self.main)
        saver = EpochCheckpoint(self.run.last_checkpoint, index, [asdict(p) for p in done],
                                generators(loaders, self.sampler))
        lines = EpochLines(phase.name, epochs_before, self.progress and not stderr_is_terminal())
        trainer = create_trainer(self.run, self.config, phase, [self.best, history, saver, lines,
                                                                 *self.user_callbacks],
                                 self.progress and stderr_is_terminal(),
                                 "" if index == 0 else phase.name,
                                 None if self.deadline is None else self.deadline - time.monotonic())
        trainer.fit(module, *loaders, ckpt_path=str(checkpoint) if checkpoint else None, weights_only=True)
        saver.phase_record = asdict(PhaseRecord(
            phase.name, trainer.current_epoch, sum(p.numel() for p in self.model.parameters() if p.requires_grad),
            phase.backbone_lr, augment=None if on_features else phase.augment or self.config.augment,
            precision=phase.precision))
        saver.save(trainer)  # the phase's end: a resume goes on with the next phase
        self.history = history.rows
        return PhaseRecord.from_dict(saver.phase_record)
