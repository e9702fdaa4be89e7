"""Callbacks that write into the run folder."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L

from cnnkit.weights import save_weights


class BestWeights(L.Callback):
    """Write the network's weights to ``model.safetensors`` whenever the validation loss reaches a new low.

    Its state (best loss and epoch) is saved in Lightning checkpoints, so a resumed run keeps the true best.
    """

    def __init__(self, path: Path, monitor: str = "val_loss"):
        self.path = Path(path)
        self.monitor = monitor
        self.best_score = math.inf
        self.best_epoch = -1
        self.best_metrics: dict[str, float] = {}  # every validation metric logged at the best epoch
        self.epoch_offset = 0  # epochs of earlier training phases (fine-tuning counts on from the head's)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        score = float(trainer.callback_metrics[self.monitor])
        if score < self.best_score:
            self.best_score, self.best_epoch = score, trainer.current_epoch + self.epoch_offset
            self.best_metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
            save_weights(pl_module.model, self.path, {"epoch": str(self.best_epoch), self.monitor: f"{score:.6f}"})

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "best_metrics": self.best_metrics}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best_score = float(state_dict["best_score"])
        self.best_epoch = int(state_dict["best_epoch"])
        self.best_metrics = dict(state_dict.get("best_metrics", {}))


class EpochTimer(L.Callback):
    """Wall time of every epoch, start to start: training, validation, logging and checkpoints, in seconds."""

    def __init__(self):
        self.seconds: list[float] = []
        self._start: float | None = None

    def _lap(self) -> None:
        import time

        now = time.perf_counter()
        if self._start is not None:
            self.seconds.append(now - self._start)
        self._start = now

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._lap()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._lap()
        self._start = None
