"""``history_`` as Keras' ``History.history``: the epochs that trained, each curve that was logged, no NaN."""

from __future__ import annotations

import math
from pathlib import Path

from cnnkit.evaluation.history import epoch_history, read_history

HEADER = "epoch,phase,train_loss,val_loss,train_acc,val_acc,lr,seconds\n"


def log(tmp_path: Path, rows: str) -> Path:
    path = tmp_path / "metrics.csv"
    path.write_text(HEADER + rows)
    return path


def test_a_solved_head_alone_has_no_epoch(tmp_path):
    path = log(tmp_path, "0,head (L-BFGS C=0.1),,0.4,,0.9,,0.5\n")
    assert math.isnan(read_history(path)["train_loss"][0])  # the figures' reading keeps the row
    assert epoch_history(path) == {"epoch": []}


def test_fine_tuning_after_a_solved_head_keeps_its_epochs_and_their_numbers(tmp_path):
    path = log(tmp_path, "0,head (L-BFGS C=0.1),,0.4,,0.9,,0.5\n"
                         "1,finetune,0.5,0.35,0.8,0.92,0.001,2.0\n"
                         "2,finetune,0.3,0.30,0.9,0.95,0.0005,2.0\n")
    assert epoch_history(path) == {"epoch": [2, 3], "train_loss": [0.5, 0.3], "val_loss": [0.35, 0.30],
                                   "train_acc": [0.8, 0.9], "val_acc": [0.92, 0.95]}


def test_an_autoencoder_has_no_accuracy_curves(tmp_path):
    path = log(tmp_path, "0,train,0.02,0.03,,,0.001,1.0\n1,train,0.01,0.02,,,0.001,1.0\n")
    assert epoch_history(path) == {"epoch": [1, 2], "train_loss": [0.02, 0.01], "val_loss": [0.03, 0.02]}


def test_no_log_is_no_epoch(tmp_path):
    assert epoch_history(tmp_path / "missing.csv") == {"epoch": []}
