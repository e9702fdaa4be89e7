"""Experts' dots on a photograph: one row per object, ``class_name,row,col`` in the photo's pixels (other columns,
such as the NOAA sea-lion files' ``tid`` and ``cls``, ignored).

``load_dots`` is the one validator every command that reads dots uses (``scan --dots``, ``points``, ``patches``):
each refusal is one line naming the file, the line and the reason. A dot outside the photo or at a coordinate that
is no finite number is refused, never counted; dots outside a ``region`` are the command's to leave out (``scan``
counts them in ``dots_outside_region``, ``points`` and ``patches`` keep background windows away from them)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from cnnkit.errors import DataError

COLUMNS = ("class_name", "row", "col")


def _dot(path: Path, line: int, row: dict) -> tuple[str, float, float]:
    where = f"Dots file {path}, line {line}"
    if any(v.strip() for v in row.get(None) or []):  # fields past the header's
        raise DataError(f"{where}: more fields than the header has columns; quote a field that holds a comma.")
    if any(row[column] is None for column in COLUMNS):
        raise DataError(f"{where}: fewer fields than the header has columns; every row needs class_name, row and "
                        "col.")
    name = row["class_name"]
    if not name or name != name.strip() or any(c in name for c in '/\\:*?"<>|\0') or name.startswith("."):
        raise DataError(f"{where}: the class name {name!r} cannot be a folder name.")
    values = []
    for column in ("row", "col"):
        text = row[column]
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise DataError(f"{where}: {column} {text!r} is not a number.") from None
        if not math.isfinite(value):
            raise DataError(f"{where}: {column} {text!r} is not a finite number; every dot needs a place in the "
                            "photo.")
        values.append(value)
    return name, values[0], values[1]


def read_dots(path: str | Path) -> list[tuple[str, float, float]]:
    """Rows ``class_name,row,col`` (other columns ignored) from a CSV with a header, each checked on its own (a class
    name usable as a folder name, finite coordinates); ``load_dots`` also checks them against the photo."""
    return [dot for _, dot in _read(Path(path))]


def _read(path: Path) -> list[tuple[int, tuple[str, float, float]]]:
    """(the line it ends on, the dot) for every row."""
    if not path.exists():
        raise DataError(f"Dots file {path} does not exist.")
    if not path.is_file():
        raise DataError(f"Dots file {path} is not a regular file (a folder, a pipe or a device).")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a spreadsheet's byte-order mark is not a column
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"Dots file {path} has no column(s) {missing}; it needs a header with class_name, "
                                f"row and col (found: {reader.fieldnames}).")
            return [(reader.line_num, _dot(path, reader.line_num, row)) for row in reader]
    except UnicodeDecodeError:
        raise DataError(f"Dots file {path} is not UTF-8 text; save it as a UTF-8 CSV with columns class_name,row,col."
                        ) from None
    except csv.Error as e:
        raise DataError(f"Dots file {path} is not a readable CSV ({e}).") from None
    except OSError as e:
        raise DataError(f"Cannot read dots file {path}: {e.strerror or e}.") from None


def check_dots(path: str | Path, dots: list[tuple[str, float, float]], height: int, width: int,
               allow_empty: bool = False, lines: list[int] | None = None) -> None:
    """Every dot inside the photo (``height`` x ``width``); at least one unless ``allow_empty``. ``lines``: where
    each dot is in the file (else counted from line 2)."""
    if not dots and not allow_empty:
        raise DataError(f"Dots file {path} has no dots: a header and at least one row class_name,row,col needed.")
    for line, (_, row, col) in zip(lines or range(2, len(dots) + 2), dots):
        if not (0 <= row < height and 0 <= col < width):
            raise DataError(f"Dots file {path}, line {line}: the dot ({row:g}, {col:g}) lies outside the photo "
                            f"({height}x{width} pixels, rows and columns from 0); is it the dots file of this photo?")


def load_dots(path: str | Path, height: int, width: int, allow_empty: bool = False) -> list[tuple[str, float, float]]:
    """The dots of a ``height`` x ``width`` photo, every row checked (``read_dots``) and inside the photo; DataError
    naming the file and line otherwise. ``allow_empty``: a photo without objects (``scan`` counts false detections
    on it) may have a header alone."""
    found = _read(Path(path))
    dots = [dot for _, dot in found]
    check_dots(path, dots, height, width, allow_empty, [line for line, _ in found])
    return dots
