"""Discover labelled images in a folder: ``root/<class>/*`` or ``root/{train,val,test}/<class>/*``."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from cnnkit.data.layout import IMAGE_EXTENSIONS, LAYOUT_HELP, SPLIT_NAMES, FolderScan, is_image_file
from cnnkit.data.table import scan_csv
from cnnkit.errors import DataError

log = logging.getLogger("cnnkit")

def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _walk(folder: Path):
    """Every file under ``folder``, symbolic links to folders followed (each real folder once), hidden ones skipped."""
    seen = set()
    for current, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(current)
        if real in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(current) / name


def _class_files(class_dir: Path, root: Path, ignored: list[str]) -> list[str]:
    images = []
    for path in _walk(class_dir):
        if not path.exists():
            log.warning("Skipping %s: a symbolic link to nothing.", path)
            continue
        if not path.is_file():  # reading a pipe named x.png would wait forever for a writer
            log.warning("Skipping %s: not a regular file (a pipe, socket or device).", path)
            continue
        (images if is_image_file(path) else ignored).append(path.relative_to(root).as_posix())
    return sorted(images)


def _scan_classes(folder: Path, root: Path, ignored: list[str], empty: list[str] | None) -> dict[str, list[str]]:
    """Each class folder's images; an empty class folder is refused, or listed in ``empty`` (relative to ``root``)."""
    class_dirs = _visible_dirs(folder)
    if not class_dirs:
        loose = [p.name for p in folder.iterdir() if p.is_file() and is_image_file(p)]
        hint = f" It holds {len(loose)} images directly; put them in one sub-folder per class." if loose else ""
        raise DataError(f"No class folders in {folder}.{hint} {LAYOUT_HELP}")
    found = {d.name: _class_files(d, root, ignored) for d in class_dirs}
    for name, files in found.items():
        if files:
            continue
        if empty is None:
            raise DataError(
                f"Class folder {folder / name} contains no images. "
                f"Allowed formats: {', '.join(IMAGE_EXTENSIONS)}. Remove the folder or add images."
            )
        empty.append((folder / name).relative_to(root).as_posix())
    return found


def scan_folder(root: str | Path, min_classes: int = 2, loose_images: bool = False,
                report_refusals: bool = False) -> FolderScan:
    """List the labelled images under ``root``; raise DataError for anything a classifier cannot train on
    (``min_classes=1`` accepts a single class, e.g. to label latent vectors). ``loose_images``: a folder of images
    without class folders is one class named after the folder (an autoencoder's data needs no labels).
    ``report_refusals`` (an audit, which reports what training refuses): what can still be looked at is kept for the
    caller to report, not refused: an empty class folder (listed in ``FolderScan.empty``), a CSV's likely typo of a
    class name (``table.likely_typos``)."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"Data folder {root} does not exist.")
    if loose_images and root.is_dir() and not _visible_dirs(root):
        files = sorted(p.name for p in root.iterdir() if p.is_file() and is_image_file(p))
        if files:
            return FolderScan(root=root, layout="flat", classes=(root.name,), samples={"all": [(f, root.name)
                                                                                             for f in files]})
    if root.is_file() and root.suffix.lower() == ".csv":
        return scan_csv(root, min_classes, refuse_typos=not report_refusals)
    if not root.is_dir():
        raise DataError(f"Data path {root} is a file; expected a folder. {LAYOUT_HELP}")
    ignored: list[str] = []
    empty: list[str] | None = [] if report_refusals else None
    top = {d.name for d in _visible_dirs(root)}
    if "train" in top:
        stray = sorted(top - set(SPLIT_NAMES))
        if stray:
            raise DataError(f"{root} mixes split folders (train/val/test) with other folders {stray}. {LAYOUT_HELP}")
        per_split = {s: _scan_classes(root / s, root, ignored, empty) for s in SPLIT_NAMES if s in top}
        classes = tuple(sorted(per_split["train"]))
        for split, found in per_split.items():
            extra = sorted(set(found) - set(classes))
            if extra:
                raise DataError(f"{root / split} has classes {extra} that {root / 'train'} does not have.")
        samples = {s: [(f, c) for c, files in found.items() for f in files] for s, found in per_split.items()}
        layout = "presplit"
    else:
        found = _scan_classes(root, root, ignored, empty)
        classes = tuple(sorted(found))
        samples = {"all": [(f, c) for c, files in found.items() for f in files]}
        layout = "flat"
    if len(classes) < min_classes:
        raise DataError(
            f"Found only one class ({classes[0]!r}) in {root}; a classifier needs at least two class folders."
        )
    if ignored:
        shown = ", ".join(ignored[:5]) + (" ..." if len(ignored) > 5 else "")
        log.warning("Ignored %d files that are not images (by extension) in %s: %s", len(ignored), root, shown)
    return FolderScan(root=root, layout=layout, classes=classes, samples=samples, ignored=tuple(ignored),
                      empty=tuple(empty or ()))


def expand_image_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given; folders replaced by the images inside them (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            candidates = sorted(f for f in p.rglob("*") if is_image_file(f) and not f.is_dir())
            found = [f for f in candidates if f.is_file()]
            for other in sorted(set(candidates) - set(found)):
                log.warning("Skipping %s: not a regular file (a pipe, socket or device, or a link to nothing).", other)
            if not found:
                raise DataError(f"Folder {p} holds no images.")
            out += found
        elif not p.exists():
            raise DataError(f"Image {p} does not exist.")
        else:
            out.append(p)
    return out
