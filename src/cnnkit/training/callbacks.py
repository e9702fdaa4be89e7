"""Callbacks that write into the run folder. Each keeps its state in Lightning's checkpoint, so a resumed run goes on
exactly where the interrupted one stopped: best weights so far, the per-epoch history, the phase, the random state."""

from __future__ import annotations

import csv
import io
import math
import os
import random
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from cnnkit._io import make_folder, write_failure, write_text
from cnnkit.weights import save_weights

HISTORY_COLUMNS = ("epoch", "phase", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


class BestWeights(L.Callback):
    """Write the network's weights to ``model.safetensors`` whenever the validation loss reaches a new low."""

    def __init__(self, path: Path, monitor: str = "val_loss", writes: bool = True):
        self.path = Path(path)
        self.monitor = monitor
        self.writes = writes  # False in the processes of a distributed training other than the main one
        self.best_score = math.inf
        self.best_epoch = -1
        self.best_metrics: dict[str, float] = {}  # every validation metric logged at the best epoch
        self.epoch_offset = 0  # epochs of earlier training phases (fine-tuning counts on from the head's)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        self.offer(pl_module.model, trainer.current_epoch + self.epoch_offset,
                   {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")})

    def offer(self, model, epoch: int, metrics: dict[str, float]) -> None:
        """Keep ``model``'s weights if its validation loss is the lowest so far."""
        score = metrics[self.monitor]
        if score < self.best_score:
            self.best_score, self.best_epoch, self.best_metrics = score, epoch, dict(metrics)
            if self.writes:
                save_weights(model, self.path, {"epoch": str(epoch), self.monitor: f"{score:.6f}"})

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "best_metrics": self.best_metrics}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best_score = float(state_dict["best_score"])
        self.best_epoch = int(state_dict["best_epoch"])
        self.best_metrics = dict(state_dict.get("best_metrics", {}))


def stderr_is_terminal() -> bool:
    import sys

    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class EpochLines(L.Callback):
    """One plain line per epoch on stderr, in place of a progress bar where stderr is not a terminal (logs, CI):
    a 3-epoch run writes 3 lines, not kilobytes of redrawn bars."""

    def __init__(self, phase: str, epoch_offset: int, enabled: bool):
        self.phase, self.epoch_offset, self.enabled = phase, epoch_offset, enabled
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import sys

        if not self.enabled or trainer.sanity_checking:
            return
        m = {k: float(v) for k, v in trainer.callback_metrics.items()}
        parts = [f"{name} {m[name]:.4f}" for name in ("train_loss", "train_acc", "val_loss", "val_acc") if name in m]
        epoch = trainer.current_epoch + 1
        where = (f"epoch {epoch}/{trainer.max_epochs}" if not self.epoch_offset and self.phase == "train" else
                 f"{self.phase} epoch {epoch}/{trainer.max_epochs} (run epoch {epoch + self.epoch_offset})")
        print(f"{where}: {'  '.join(parts)}  ({time.perf_counter() - self._start:.1f} s)", file=sys.stderr,
              flush=True)


def stderr_progress_bar():
    """Lightning's progress bar, drawn on stderr (Lightning draws on stdout, which carries results), with epochs
    counted from 1 as the summary counts them."""
    import contextlib
    import sys

    from lightning.pytorch.callbacks import TQDMProgressBar

    class StderrBar(TQDMProgressBar):
        def _on_stderr(self, make):
            with contextlib.redirect_stdout(sys.stderr):  # Lightning passes file=sys.stdout, read at the call
                return make()

        def init_train_tqdm(self):
            return self._on_stderr(super().init_train_tqdm)

        def init_validation_tqdm(self):
            return self._on_stderr(super().init_validation_tqdm)

        def init_sanity_tqdm(self):
            return self._on_stderr(super().init_sanity_tqdm)

        def init_predict_tqdm(self):
            return self._on_stderr(super().init_predict_tqdm)

        def init_test_tqdm(self):
            return self._on_stderr(super().init_test_tqdm)

        def on_train_epoch_start(self, trainer, *args) -> None:
            super().on_train_epoch_start(trainer, *args)
            self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}")

    return StderrBar()


class History(L.Callback):
    """One row per epoch (losses, accuracies, learning rate, seconds), across phases and resumes, rewritten whole
    into ``logs/metrics.csv`` after every epoch: the log is never lost or half-written."""

    def __init__(self, path: Path, phase: str, epoch_offset: int, rows: list[dict] | None = None,
                 writes: bool = True):
        self.path, self.phase, self.epoch_offset, self.writes = Path(path), phase, epoch_offset, writes
        self.rows: list[dict] = list(rows or [])
        self._start: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        epoch = trainer.current_epoch + self.epoch_offset
        row = {"epoch": epoch, "phase": self.phase, **{k: metrics.get(k) for k in HISTORY_COLUMNS[2:6]},
               "lr": optimizer.param_groups[0]["lr"] if optimizer else None,
               "seconds": round(time.perf_counter() - (self._start or time.perf_counter()), 4)}
        self.rows = [r for r in self.rows if r["epoch"] < epoch] + [row]
        self.write()

    def write(self) -> None:
        if not self.writes:
            return
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in self.rows)
        write_text(self.path, out.getvalue())

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = [dict(r) for r in state_dict.get("rows", [])]


def random_state() -> dict:
    """The random generators' states as plain numbers and a tensor (a checkpoint loads them without pickle)."""
    _, keys, position, has_gauss, gauss = np.random.get_state()
    version, python_state, python_gauss = random.getstate()
    return {"torch": torch.get_rng_state(), "numpy": [keys.tolist(), int(position), int(has_gauss), float(gauss)],
            "python": [version, list(python_state), python_gauss]}


def set_random_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    version, python_state, python_gauss = state["python"]
    random.setstate((version, tuple(python_state), python_gauss))


def save_solved_phase(path: Path, model, phase_index: int, phases_done: list[dict], phase_record: dict,
                      history: list[dict], best: BestWeights) -> None:
    """A checkpoint for a phase solved without epochs (the converged head), with what ``read_progress`` and a
    resumed run need: the weights, the phase's record, the history, the best so far and the random state."""
    state = {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
             "callbacks": {"EpochCheckpoint": {"phase_index": phase_index, "phases_done": phases_done,
                                               "phase_record": phase_record, "random": random_state()},
                           "History": {"rows": history}, "BestWeights": best.state_dict()}}
    make_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException as e:  # a full disk: the checkpoint named, its temporary file removed
        failure = write_failure(path, e, tmp)
        if failure is e:
            raise
        raise failure from None


class EpochCheckpoint(L.Callback):
    """After every epoch, the whole training state (weights, optimiser, schedule, epoch, phase, best so far, random
    state) goes to ``checkpoints/last.ckpt``, written atomically: a killed run loses at most the epoch under way."""

    def __init__(self, path: Path, phase_index: int, phases_done: list[dict] | None = None,
                 generators: list | None = None):
        self.path, self.phase_index = Path(path), phase_index
        self.generators = list(generators or [])  # the data loaders' shuffling and sampling generators
        self.phases_done = list(phases_done or [])  # records of the phases finished before this one
        self.phase_record: dict | None = None  # this phase's record, once it is complete

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save(trainer)

    def save(self, trainer: L.Trainer) -> None:
        make_folder(self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            trainer.save_checkpoint(tmp)  # every process takes part; the main one writes (Lightning)
            if trainer.is_global_zero:
                os.replace(tmp, self.path)
        except BaseException as e:  # a full disk: the checkpoint named, its temporary file removed
            failure = write_failure(self.path, e, tmp)
            if failure is e:
                raise
            raise failure from None

    def state_dict(self) -> dict:
        return {"phase_index": self.phase_index, "phases_done": self.phases_done, "phase_record": self.phase_record,
                "random": random_state(), "generators": [g.get_state() for g in self.generators]}

    def load_state_dict(self, state_dict: dict) -> None:
        set_random_state(state_dict["random"])
        for generator, state in zip(self.generators, state_dict.get("generators", [])):
            generator.set_state(state)
