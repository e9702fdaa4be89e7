"""The labels CSV that ``cnnkit label`` writes: columns ``path,label``, the format ``cnnkit train`` reads
(``data.table.scan_csv``), paths relative to the CSV's folder (absolute where the image lies elsewhere). The whole file
is written again, atomically, after every change, so a server or browser that dies loses no label given before."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from cnnkit._io import write_text
from cnnkit.errors import DataError

COLUMNS = ("path", "label")


class LabelsFile:
    """The labels CSV as a mapping from an image's absolute path to its label, in the order they were given."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().absolute()
        self.folder = self.path.parent
        self.labels: dict[Path, str] = self._read() if self.path.exists() else {}

    def _read(self) -> dict[Path, str]:
        if not self.path.is_file():
            raise DataError(f"`labels`: {self.path} is not a regular file; give a CSV path (it is created if missing).")
        try:
            with open(self.path, newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f, skipinitialspace=True)
                columns = tuple(c.strip() for c in reader.fieldnames or [])
                if columns and columns != COLUMNS:
                    raise DataError(f"`labels`: {self.path} has the columns {','.join(columns)}; cnnkit label keeps "
                                    "a CSV of path,label only. Give a new file.")
                reader.fieldnames = list(columns)
                rows = [((row.get("path") or "").strip(), (row.get("label") or "").strip()) for row in reader]
        except UnicodeDecodeError:
            raise DataError(f"`labels`: {self.path} is not a UTF-8 text file; expected a CSV path,label.") from None
        except csv.Error as e:
            raise DataError(f"`labels`: {self.path} is not a readable CSV ({e}).") from None
        return {self._absolute(file): label for file, label in rows if file}

    def _absolute(self, file: str) -> Path:
        return Path(os.path.normpath(self.folder / file))

    def _written(self, image: Path) -> str:
        """The path as the CSV holds it: relative to its folder where the image lies inside, else absolute."""
        return image.relative_to(self.folder).as_posix() if image.is_relative_to(self.folder) else str(image)

    def get(self, image: Path) -> str | None:
        return self.labels.get(image)

    def set(self, image: Path, label: str | None) -> None:
        """Give ``image`` its ``label`` (None: take its label away) and write the file."""
        if label is None:
            self.labels.pop(image, None)
        else:
            self.labels[image] = label
        self.save()

    def save(self) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for image, label in self.labels.items():
            writer.writerow([self._written(image), label])
        write_text(self.path, buffer.getvalue())
