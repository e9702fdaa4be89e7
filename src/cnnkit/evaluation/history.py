"""Training curves from a run's CSV log: one value per epoch for each logged metric."""

from __future__ import annotations

import csv
import math
from pathlib import Path

CURVES = ("train_loss", "val_loss", "train_acc", "val_acc")


def read_history(csv_path: str | Path) -> dict[str, list[float]]:
    """``{"epoch": [1, 2, ...], "train_loss": [...], ...}``; NaN where an epoch has no value; empty if no log."""
    path = Path(csv_path)
    if not path.exists():
        return {}
    per_epoch: dict[int, dict[str, float]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if not row.get("epoch"):
                continue
            values = per_epoch.setdefault(int(row["epoch"]), {})
            values.update({k: float(v) for k, v in row.items() if k in CURVES and v not in ("", None)})
    epochs = sorted(per_epoch)
    history = {"epoch": [e + 1 for e in epochs]}
    for name in CURVES:
        history[name] = [per_epoch[e].get(name, math.nan) for e in epochs]
    return history


def epoch_history(csv_path: str | Path) -> dict[str, list[float]]:
    """The epochs that trained, as Keras' ``History.history``: ``{"epoch": [...], "train_loss": [...], ...}`` with
    each curve that training logged (an autoencoder logs no accuracy) and no NaN. A head solved by L-BFGS is no
    epoch: its row (validation scores only) is left out; ``{"epoch": []}`` when no epoch trained."""
    history = read_history(csv_path)
    trained = [i for i, value in enumerate(history.get("train_loss", [])) if not math.isnan(value)]
    logged = [name for name in CURVES if any(not math.isnan(history[name][i]) for i in trained)]
    rows = [i for i in trained if not any(math.isnan(history[name][i]) for name in logged)]
    return {"epoch": [history["epoch"][i] for i in rows], **{name: [history[name][i] for i in rows]
                                                             for name in logged}}


def still_improving(history: dict[str, list[float]], share: float = 0.25, gain: float = 0.05) -> bool:
    """Whether the validation loss was still falling when training ended: its last ``share`` of the epochs lowered
    the best loss by at least ``gain`` (relative). A cosine schedule ends at a low rate, so a best last epoch alone
    is usual; a clear gain over the last quarter means more epochs may help."""
    losses = [v for v in history.get("val_loss", []) if not math.isnan(v)]
    if len(losses) < 4:
        return False
    cut = max(1, int(round(len(losses) * (1 - share))))
    before, after = min(losses[:cut]), min(losses[cut:])
    return after < before * (1 - gain)
