"""How commands treat an unreadable image among many: declared once for training and for prediction alike."""

from __future__ import annotations

from dataclasses import dataclass

from cnnkit.options import option


@dataclass(frozen=True)
class ReadConfig:
    skip_bad: bool = option(False, "leave out unreadable images (each one listed in a warning) instead of stopping",
                            group="data")
