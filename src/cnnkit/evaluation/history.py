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
