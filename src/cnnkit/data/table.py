"""Labels from a CSV file instead of class folders (fastai's ``from_csv``, Keras' ``from_dataframe``): columns ``path``
and ``label``, and optionally ``split`` (train, val or test) to fix the split; paths relative to the CSV's folder, or
absolute.

A label listing several names, ``a|b``, makes the set multi-label (fastai's ``MultiCategoryBlock``): each image has
any number of the labels, and in such a set an empty label means none of them.

``scan_csv`` is the one reader of label CSVs: every command that takes one (train, evaluate, audit, latent, ...) gets
the same checks, each refusal one line naming the file and row. Paths are stored relative to the data folder the scan
chooses: the CSV's folder when every image lies inside it, else the deepest folder holding them all; so a run's
``split.json`` never lists an absolute or ``..`` path, whatever the CSV says."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from cnnkit.data.layout import SPLIT_NAMES, FolderScan, is_image_file
from cnnkit.errors import DataError

MULTI_LABEL_SEPARATOR = "|"
TYPO_DISTANCE = 2  # a class of one image this close to another class's name is a typo (see ``_likely_typos``)


@dataclass(frozen=True)
class _Row:
    line: int  # the CSV's line where the row ends (the header is line 1)
    path: str
    label: str
    split: str | None


def _rows(path: Path) -> tuple[list[str], list[_Row]]:
    """The header and every row; a file that is not UTF-8 text, not a CSV, or a row with more fields than the header
    is refused naming the file (and row)."""
    if path.exists() and not path.is_file():
        raise DataError(f"{path} is not a regular file; expected a CSV with columns path,label.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, skipinitialspace=True)
            columns = [c.strip() for c in reader.fieldnames or []]  # "path, label" reads as path,label
            reader.fieldnames = columns
            rows = []
            for row in reader:
                extra = [v for v in row.get(None) or [] if v.strip()]  # csv puts fields past the header under None
                if extra:
                    raise DataError(f"{path}, row {reader.line_num}: {len(columns) + len(row[None])} fields for a "
                                    f"header of {len(columns)} ({','.join(columns)}); quote a field that holds a "
                                    f"comma (labels of several classes read a{MULTI_LABEL_SEPARATOR}b).")
                rows.append(_Row(reader.line_num, (row.get("path") or "").strip(), (row.get("label") or "").strip(),
                                 (row.get("split") or "").strip() or None))
            return columns, rows
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a UTF-8 text file; expected a CSV with columns path,label.") from None
    except csv.Error as e:
        raise DataError(f"{path} is not a readable CSV ({e}).") from None
    except OSError as e:
        raise DataError(f"Cannot read {path}: {e.strerror or e}.") from None


def split_labels(label: str) -> list[str]:
    """The names in a multi-label entry ``a|b`` (blanks around names dropped; an empty entry has none)."""
    return [name.strip() for name in label.split(MULTI_LABEL_SEPARATOR) if name.strip()]


def join_labels(names) -> str:
    return MULTI_LABEL_SEPARATOR.join(names)


def _located(folder: Path, file: str) -> Path:
    """The row's file as an absolute path, ``..`` and linked folders resolved; the file's own name is kept (a link to
    an image elsewhere stays where the CSV put it)."""
    joined = folder / file  # an absolute ``file`` replaces the folder
    return Path(os.path.realpath(joined.parent)) / joined.name


def _checked(path: Path, folder: Path, row: _Row, multi_label: bool) -> tuple[Path, str, str | None]:
    """(the image's absolute path, its label, its split), or DataError naming the row and what to fix."""
    where = f"{path}, row {row.line}"
    label = row.label
    if not row.path:
        raise DataError(f"{where}: empty path; every row needs a path and a label.")
    if not label and not multi_label:
        raise DataError(f"{where}: empty label; every row needs a label (in a multi-label CSV, where some labels "
                        "read a|b, an empty label means none of them).")
    if multi_label:
        names = split_labels(label)
        if len(set(names)) != len(names):
            raise DataError(f"{where}: label {label!r} names a label twice.")
        label = join_labels(sorted(names))
    if row.split is not None and row.split not in SPLIT_NAMES:
        raise DataError(f"{where}: split {row.split!r} is not one of {', '.join(SPLIT_NAMES)}.")
    try:
        if "\x00" in row.path:
            raise ValueError("it holds a NUL character")
        image = _located(folder, row.path)
        exists = image.exists()
    except (OSError, ValueError) as e:  # a NUL character, a name too long for the file system
        raise DataError(f"{where}: {row.path!r} is not a usable path ({e}).") from None
    if not exists:
        raise DataError(f"{where}: {image} does not exist (paths are relative to the CSV's folder, or absolute).")
    if not image.is_file():
        raise DataError(f"{where}: {image} is not a regular file (a folder, a pipe or a device); list image files "
                        "only.")
    if not is_image_file(image):
        raise DataError(f"{where}: {image} does not have an image file extension.")
    return image, label, row.split


def _data_root(path: Path, folder: Path, images: list[Path]) -> Path:
    """The CSV's folder when it holds every image, else the deepest folder that holds them all."""
    if all(image.is_relative_to(folder) for image in images):
        return folder
    try:
        return Path(os.path.commonpath([image.parent for image in images]))
    except ValueError:  # Windows: images on several drives
        raise DataError(f"{path} lists images on different drives; no one data folder holds them all. Copy them "
                        "under one folder.") from None


def _distance(a: str, b: str) -> int:
    """Edit distance: insertions, deletions, substitutions and swaps of neighbours, each 1."""
    before, row = None, list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            cost = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (x != y))
            if before is not None and j > 1 and x == b[j - 2] and a[i - 2] == y:
                cost = min(cost, before[j - 2] + 1)
            current.append(cost)
        before, row = row, current
    return row[-1]


def _likely_typos(classes: list[str], uses: dict[str, int]) -> list[tuple[str, str]]:
    """(name, the class it is near) for each class used by one row whose name is within ``TYPO_DISTANCE`` edits of a
    class used by more (fewer edits for short names: 'cat' and 'cot' are different words)."""
    found = []
    for name in classes:
        if uses[name] != 1:
            continue
        allowed = min(TYPO_DISTANCE, (len(name) - 1) // 3)
        near = [other for other in classes if other != name and uses[other] > 1 and _distance(name, other) <= allowed]
        if near:
            found.append((name, min(near, key=lambda other: (_distance(name, other), other))))
    return found


def likely_typos(labels: list[str], multi_label: bool) -> list[tuple[str, str, int]]:
    """(name, the class it is near, that class's images) for each class of ``labels`` (one per image) that one image
    has and whose name is a few edits from a class with more: what ``scan_csv`` refuses as a likely typo."""
    uses: dict[str, int] = {}
    for label in labels:
        for name in split_labels(label) if multi_label else [label]:
            uses[name] = uses.get(name, 0) + 1
    return [(name, near, uses[near]) for name, near in _likely_typos(sorted(uses), uses)]


def _refuse_typos(path: Path, rows: list[_Row], labels: list[str], multi_label: bool) -> None:
    typos = likely_typos(labels, multi_label)
    if typos:
        name, near, images = typos[0]
        line = next(row.line for row, label in zip(rows, labels)
                    if name in (split_labels(label) if multi_label else [label]))
        raise DataError(f"{path}, row {line}: class {name!r} has this one image and is close to class {near!r} "
                        f"({images} images): a typo? Correct the row, or label more images {name!r} if it is a "
                        "class of its own.")


def scan_csv(path: str | Path, min_classes: int = 2, refuse_typos: bool = True) -> FolderScan:
    """The CSV's images and labels as a ``FolderScan`` (see the module's note on its root); DataError naming the file
    and row for anything a classifier cannot train on. ``refuse_typos`` False: a likely typo of a class name
    (``likely_typos``) is left for the caller to report."""
    path = Path(path).expanduser()
    columns, rows = _rows(path)
    missing = [c for c in ("path", "label") if c not in columns]
    if missing:
        raise DataError(f"{path} has no {' and no '.join(repr(c) for c in missing)} column; expected a header "
                        f"path,label[,split]. Found: {columns}")
    if not rows:
        raise DataError(f"{path} lists no images.")
    folder = path.parent.resolve()
    multi_label = any(MULTI_LABEL_SEPARATOR in row.label for row in rows)
    checked = [_checked(path, folder, row, multi_label) for row in rows]
    root = _data_root(path, folder, [image for image, _, _ in checked])
    samples = [(image.relative_to(root).as_posix(), label, split) for image, label, split in checked]
    seen: dict[str, int] = {}
    for row, (file, _, _) in zip(rows, samples):
        if file in seen:
            raise DataError(f"{path}: {file} is listed twice (rows {seen[file]} and {row.line}).")
        seen[file] = row.line
    splits = {s for _, _, s in samples}
    if len(splits) > 1 and None in splits:
        raise DataError(f"{path}: the split column is filled for some rows and empty for others.")
    classes = tuple(sorted({name for _, label, _ in samples
                            for name in (split_labels(label) if multi_label else [label])}))
    if len(classes) < min_classes:
        found = f"only one label ({classes[0]!r})" if classes else "no label"
        raise DataError(f"{path} has {found}; a classifier needs at least two.")
    if refuse_typos:
        _refuse_typos(path, rows, [label for _, label, _ in samples], multi_label)
    if None in splits:
        return FolderScan(root, "flat", classes, {"all": [(f, c) for f, c, _ in samples]}, multi_label=multi_label)
    if "train" not in splits:
        raise DataError(f"{path}: no row has split 'train'.")
    by_split = {s: [(f, c) for f, c, split in samples if split == s] for s in SPLIT_NAMES if s in splits}
    return FolderScan(root, "presplit", classes, by_split, multi_label=multi_label)
