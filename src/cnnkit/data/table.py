"""Labels from a CSV file instead of class folders (fastai's ``from_csv``, Keras' ``from_dataframe``): columns ``path``
and ``label``, and optionally ``split`` (train, val or test) to fix the split; paths relative to the CSV's folder.

A label listing several names, ``a|b``, makes the set multi-label (fastai's ``MultiCategoryBlock``): each image has
any number of the labels, and in such a set an empty label means none of them."""

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


def split_labels(label: str) -> list[str]:
    """The names in a multi-label entry ``a|b`` (blanks around names dropped; an empty entry has none)."""
    return [name.strip() for name in label.split(MULTI_LABEL_SEPARATOR) if name.strip()]


def join_labels(names) -> str:
    return MULTI_LABEL_SEPARATOR.join(names)


def _sample(path: Path, root: Path, number: int, row: dict, multi_label: bool) -> tuple[str, str, str | None]:
    where = f"{path}, row {number}"
    file, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
    split = (row.get("split") or "").strip() or None
    if not file:
        raise DataError(f"{where}: empty path; every row needs a path and a label.")
    if not label and not multi_label:
        raise DataError(f"{where}: empty label; every row needs a label (in a multi-label CSV, where some labels "
                        "read a|b, an empty label means none of them).")
    if multi_label:
        names = split_labels(label)
        if len(set(names)) != len(names):
            raise DataError(f"{where}: label {label!r} names a label twice.")
        label = join_labels(sorted(names))
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
    multi_label = any(MULTI_LABEL_SEPARATOR in (row.get("label") or "") for row in rows)
    samples = [_sample(path, root, i + 2, row, multi_label) for i, row in enumerate(rows)]
    seen: dict[str, int] = {}
    for i, (file, _, _) in enumerate(samples):
        if file in seen:
            raise DataError(f"{path}: {file} is listed twice (rows {seen[file] + 2} and {i + 2}).")
        seen[file] = i
    splits = {s for _, _, s in samples}
    if len(splits) > 1 and None in splits:
        raise DataError(f"{path}: the split column is filled for some rows and empty for others.")
    classes = tuple(sorted({name for _, label, _ in samples
                            for name in (split_labels(label) if multi_label else [label])}))
    if len(classes) < min_classes:
        found = f"only one label ({classes[0]!r})" if classes else "no label"
        raise DataError(f"{path} has {found}; a classifier needs at least two.")
    if None in splits:
        return FolderScan(root, "flat", classes, {"all": [(f, c) for f, c, _ in samples]}, multi_label=multi_label)
    if "train" not in splits:
        raise DataError(f"{path}: no row has split 'train'.")
    by_split = {s: [(f, c) for f, c, split in samples if split == s] for s in SPLIT_NAMES if s in splits}
    return FolderScan(root, "presplit", classes, by_split, multi_label=multi_label)
