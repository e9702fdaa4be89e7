"""Experts' dots on a photograph: one row per object, ``class_name,row,col`` in the photo's pixels (other columns,
such as the NOAA sea-lion files' ``tid`` and ``cls``, ignored)."""

from __future__ import annotations

import csv
from pathlib import Path

from cnnkit.errors import DataError


def read_dots(path: str | Path) -> list[tuple[str, float, float]]:
    """Rows ``class_name,row,col`` (other columns ignored) from a CSV with a header."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Dots file {path} does not exist.")
    with open(path, newline="", encoding="utf-8-sig") as f:  # a spreadsheet's byte-order mark is not a column
        reader = csv.DictReader(f)
        missing = [c for c in ("class_name", "row", "col") if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"Dots file {path} has no column(s) {missing}; it needs a header with class_name, row "
                            f"and col (found: {reader.fieldnames}).")
        try:
            return [(r["class_name"], float(r["row"]), float(r["col"])) for r in reader]
        except (TypeError, ValueError) as e:
            raise DataError(f"Dots file {path}: a row or col is not a number ({e}).") from None


def check_dots(path: str | Path, dots: list[tuple[str, float, float]], height: int, width: int) -> None:
    """Every dot inside the photo (``height`` x ``width``), with a class name usable as a folder name."""
    if not dots:
        raise DataError(f"Dots file {path} has no dots: a header and at least one row class_name,row,col needed.")
    for i, (name, row, col) in enumerate(dots, start=2):
        if not name or name != name.strip() or any(c in name for c in '/\\:*?"<>|') or name.startswith("."):
            raise DataError(f"Dots file {path}, line {i}: the class name {name!r} cannot be a folder name.")
        if not (0 <= row < height and 0 <= col < width) or row != row or col != col:
            raise DataError(f"Dots file {path}, line {i}: the dot ({row:g}, {col:g}) lies outside the photo "
                            f"({height}x{width} pixels, rows and columns from 0); is it the dots file of this photo?")
