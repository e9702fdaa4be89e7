"""The dots file of a photo that ``cnnkit label`` dots: ``class_name,row,col`` in the photo's pixels, exactly what
``scan --dots``, ``patches`` and ``points`` read (``data.dots.load_dots`` checks it when it is opened), written again
whole and atomically after every change, so that a server or browser that dies loses no dot given before.

Beside it, ``NAME.review.json`` keeps what the person said that the dots cannot: the proposals rejected (where no
object is) and the parts of the photo reviewed (where every object is dotted), which learning again learns from."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from cnnkit._io import write_json, write_text
from cnnkit.data.dots import COLUMNS, load_dots
from cnnkit.errors import DataError


@dataclass
class Dot:
    class_name: str
    row: float
    col: float


@dataclass
class DotsFile:
    """The dots of one ``height`` x ``width`` photo, the proposals rejected on it and the boxes reviewed
    (top, bottom, left, right in its pixels)."""

    path: Path
    height: int
    width: int
    dots: list[Dot] = field(default_factory=list)
    rejected: list[tuple[float, float]] = field(default_factory=list)
    reviewed: list[tuple[int, int, int, int]] = field(default_factory=list)

    @classmethod
    def open(cls, path: str | Path, height: int, width: int) -> DotsFile:
        """The file at ``path`` continued (checked as every command checks dots), or a new one if it is missing."""
        path = Path(path).expanduser().absolute()
        found = cls(path, height, width)
        if path.exists():
            try:
                with open(path, newline="", encoding="utf-8-sig") as f:
                    columns = tuple(c.strip() for c in next(csv.reader(f), []))
            except UnicodeDecodeError:
                raise DataError(f"`dots`: {path} is not a text CSV (an image given as a dots file?); give one CSV "
                                f"of {','.join(COLUMNS)} per photo.") from None
            if columns and columns != COLUMNS:
                raise DataError(f"`dots`: {path} has the columns {','.join(columns)}; cnnkit label keeps a CSV of "
                                f"{','.join(COLUMNS)} only. Give a new file (or copy those three columns).")
            found.dots = [Dot(*dot) for dot in load_dots(path, height, width, allow_empty=True)]
        if found.review_path.exists():
            found.rejected, found.reviewed = _review(found.review_path)
        return found

    @property
    def review_path(self) -> Path:
        return self.path.with_name(f"{self.path.stem}.review.json")

    def check(self, row: float, col: float) -> None:
        if not (0 <= row < self.height and 0 <= col < self.width):
            raise DataError(f"The dot ({row:g}, {col:g}) lies outside the photo ({self.height}x{self.width} pixels, "
                            "rows and columns from 0).")

    def save(self) -> None:
        """Write the dots (and the review beside them, where there is one), each file atomically."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows((d.class_name, f"{d.row:.1f}", f"{d.col:.1f}") for d in self.dots)
        write_text(self.path, buffer.getvalue())
        if self.rejected or self.reviewed or self.review_path.exists():
            write_json(self.review_path, {"rejected": [list(p) for p in self.rejected],
                                          "reviewed": [list(b) for b in self.reviewed]})

    def snapshot(self) -> tuple:
        return [Dot(d.class_name, d.row, d.col) for d in self.dots], list(self.rejected), list(self.reviewed)

    def restore(self, snapshot: tuple) -> None:
        self.dots, self.rejected, self.reviewed = (list(part) for part in snapshot)
        self.save()

    def reviewed_box(self) -> tuple[int, int, int, int] | None:
        """The box around every part reviewed (None: none marked, the photo is taken as dotted whole)."""
        if not self.reviewed:
            return None
        tops, bottoms, lefts, rights = zip(*self.reviewed)
        return min(tops), max(bottoms), min(lefts), max(rights)


def _review(path: Path) -> tuple[list, list]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rejected = [(float(r), float(c)) for r, c in data.get("rejected", [])]
        reviewed = [tuple(int(v) for v in box) for box in data.get("reviewed", [])]
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError) as e:
        raise DataError(f"`dots`: cannot read {path} ({e}); it keeps the rejected proposals and reviewed parts: "
                        "remove it to start the review of that photo afresh (its dots stay).") from None
    if any(len(box) != 4 for box in reviewed):
        raise DataError(f"`dots`: {path} has a reviewed box that is not top,bottom,left,right; remove it.")
    return rejected, reviewed
