"""Recipes chosen for the user: ``auto_train`` tries the probe, transfer, fine-tuning (and a scratch CNN for small
grayscale images) within a time budget, ranks them on validation data and keeps the best as the run."""

from cnnkit.recipes.auto import CANDIDATES, auto_train

__all__ = ["CANDIDATES", "auto_train"]
