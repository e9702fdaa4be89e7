"""One training patch to cut from a photo: where its centre lies, its class, and why it is cut (a dot, background,
or a hard negative mined with a run's scan)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Patch:
    label: str
    row: int  # the centre, in the photo's pixels
    col: int
    kind: str  # "dot", "background" or "hard negative"
    dot: tuple[float, float] | None = None
