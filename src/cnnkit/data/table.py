"""Labels from a CSV file instead of class folders (fastai's ``from_csv``, Keras' ``from_dataframe``): columns ``path``
and ``label``, and optionally ``split`` (train, val or test) to fix the split; paths relative to the CSV's folder."""

from __future__ import annotations

import csv
from pathlib import Path

from cnnkit.data.files import SPLIT_NAMES, FolderScan, is_image_file
from cnnkit.errors import DataError

MULTI_LABEL_SEPARATOR = "|"


def _rows(path: Path) -> tuple[list[str], list[dict]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, skipinitialspace=True)
            reader.fieldnames = [c.strip() for c in reader.fieldnames or []]  # "path, label" reads as path,label
            return list(reader.fieldnames), list(reader)
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a UTF-8 text file; expected a CSV with columns path,label.") from None
    except csv.Error as e:
        raise DataError(f"{path} is not a readable CSV ({e}).") from None


def _sample(path: Path, root: Path, number: int, row: dict) -> tuple[str, str, str | None]:
    where = f"{path}, row {number}"
    file, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
    split = (row.get("split") or "").strip() or None
    if not file or not label:
        raise DataError(f"{where}: empty {'path' if not file else 'label'}; every row needs a path and a label.")
    if MULTI_LABEL_SEPARATOR in label:
        raise DataError(f"{where}: label {label!r} lists several labels; multi-label classification is not "
                        "supported yet (one label per image).")
    if split is not None and split not in SPLIT_NAMES:
        raise DataError(f"{where}: split {split!r} is not one of {', '.join(SPLIT_NAMES)}.")
    image = root / file
    if not image.is_file():
        raise DataError(f"{where}: {image} does not exist (paths are relative to the CSV's folder).")
    if not is_image_file(image):
        raise DataError(f"{where}: {image} does not have an image file extension.")
    return file, label, split


def scan_csv(path: str | Path, min_classes: int = 2) -> FolderScan:
    """The CSV's images and labels as a ``FolderScan`` rooted at its folder; DataError naming the file and row."""
    path = Path(path).expanduser()
    columns, rows = _rows(path)
    missing = [c for c in ("path", "label") if c not in columns]
    if missing:
        raise DataError(f"{path} has no {' and no '.join(repr(c) for c in missing)} column; expected a header "
                        f"path,label[,split]. Found: {columns}")
    if not rows:
        raise DataError(f"{path} lists no images.")
    root = path.parent.resolve()
    samples = [_sample(path, root, i + 2, row) for i, row in enumerate(rows)]
    seen: dict[str, int] = {}
    for i, (file, _, _) in enumerate(samples):
        if file in seen:
            raise DataError(f"{path}: {file} is listed twice (rows {seen[file] + 2} and {i + 2}).")
        seen[file] = i
    splits = {s for _, _, s in samples}
    if len(splits) > 1 and None in splits:
        raise DataError(f"{path}: the split column is filled for some rows and empty for others.")
    classes = tuple(sorted({label for _, label, _ in samples}))
    if len(classes) < min_classes:
        raise DataError(f"{path} has only one label ({classes[0]!r}); a classifier needs at least two.")
    if None in splits:
        return FolderScan(root, "flat", classes, {"all": [(f, c) for f, c, _ in samples]})
    if "train" not in splits:
        raise DataError(f"{path}: no row has split 'train'.")
    by_split = {s: [(f, c) for f, c, split in samples if split == s] for s in SPLIT_NAMES if s in splits}
    return FolderScan(root, "presplit", classes, by_split)
