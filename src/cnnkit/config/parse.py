"""Command-line spellings of settings: sizes such as ``48x64`` and model options such as ``filters=16,32``."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from cnnkit.errors import ConfigError


def parse_size(text: str) -> tuple[int, ...]:
    """'32' -> (32, 32); '48x64' -> (48, 64); '1x32x32' -> (1, 32, 32)."""
    try:
        parts = tuple(int(p) for p in str(text).lower().split("x"))
    except ValueError:
        raise ConfigError(f"Expected a size like 32, 48x64 or 1x32x32. Received: {text!r}") from None
    if any(p < 1 for p in parts):
        raise ConfigError(f"Sizes must be positive. Received: {text!r}")
    return parts * 2 if len(parts) == 1 else parts


def _value(text: str):
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if "," in text:
        return tuple(_value(part) for part in text.split(",") if part)
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_options(items: list[str] | str | None) -> dict:
    """``["batch_norm=false", "filters=16,32", "dropout=0.1"]`` -> typed model options.

    A single string is one option (``"dropout=0.5"``); a head spec ``"dropout=0.5,hidden=0"`` is split by
    ``parse_head``.
    """
    options = {}
    for item in [items] if isinstance(items, str) else items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"Expected a model option as name=value. Received: {item!r}")
        options[key.strip().replace("-", "_")] = _value(raw.strip())
    return options


def parse_head(spec: str | None) -> dict:
    """A backbone head spec ``"dropout=0.5,hidden=0"`` -> {"dropout": 0.5, "hidden": 0}."""
    return parse_options(spec.split(",") if spec else None)


@dataclass(frozen=True)
class Region:
    """Rows ``top:bottom`` and columns ``left:right`` of a photo, half-open, in its own pixels; None: to the edge."""

    top: int = 0
    bottom: int | None = None
    left: int = 0
    right: int | None = None

    def __post_init__(self) -> None:
        spans = ((self.top, self.bottom), (self.left, self.right))
        whole = (lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool))  # numpy's integers too
        if any(not whole(a) or a < 0 or (b is not None and (not whole(b) or b <= a)) for a, b in spans):
            raise ConfigError(f"Expected `region` spans START:END of whole pixels with 0 <= START < END. Received: "
                              f"rows {self.top}:{self.bottom}, columns {self.left}:{self.right}")

    def bounds(self, height: int, width: int, photo: object) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) inside a ``height`` x ``width`` photo; a region reaching past it is an error."""
        bottom = height if self.bottom is None else self.bottom
        right = width if self.right is None else self.right
        if bottom > height or right > width or self.top >= height or self.left >= width:
            raise ConfigError(f"`region` {self} (rows,columns) reaches past {photo} ({height} rows x {width} "
                              "columns).")
        return self.top, bottom, self.left, right

    @property
    def top_left(self) -> tuple[int, int]:
        return self.top, self.left

    def local(self, dots: list[tuple[str, float, float]]) -> tuple[list, list]:
        """Every dot ``(class, row, col)`` moved into the region's pixels, and those of them inside it."""
        bottom, right = (float("inf") if end is None else end for end in (self.bottom, self.right))
        moved = [(name, row - self.top, col - self.left) for name, row, col in dots]
        inside = [m for m, (_, row, col) in zip(moved, dots) if self.top <= row < bottom and self.left <= col < right]
        return moved, inside

    def __str__(self) -> str:
        def span(a: int, b: int | None) -> str:
            return f"{a}:{'' if b is None else b}"
        return span(self.top, self.bottom) + ("" if (self.left, self.right) == (0, None)
                                              else "," + span(self.left, self.right))


def parse_region(text: str) -> Region:
    """'0:1600' -> rows 0 to 1600, all columns; '1600:,0:2500' -> rows from 1600, columns 0 to 2500."""
    parts = str(text).replace(" ", "").split(",")
    spans = []
    try:
        for part in parts:
            start, end = part.split(":")
            spans.append((int(start) if start else 0, int(end) if end else None))
    except ValueError:
        raise ConfigError(f"Expected `region` as ROWS or ROWS,COLS, each START:END in pixels (e.g. 0:1600 or "
                          f"1600:,0:2500). Received: {text!r}") from None
    if len(spans) > 2 or any(a < 0 or (b is not None and b <= a) for a, b in spans):
        raise ConfigError(f"Expected `region` as ROWS or ROWS,COLS: one or two START:END spans with 0 <= START < "
                          f"END. Received: {text!r}")
    (top, bottom), (left, right) = spans[0], spans[1] if len(spans) == 2 else (0, None)
    return Region(top, bottom, left, right)
