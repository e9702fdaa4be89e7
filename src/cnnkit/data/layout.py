"""What a labelled data set looks like once found: its layouts, split folders and image files, and ``FolderScan``,
what a class-folder tree (``data.files``) or a CSV of labels (``data.table``) holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
SPLIT_NAMES = ("train", "val", "test")
LAYOUT_HELP = ("Expected root/<class>/<images>, root/{train,val,test}/<class>/<images>, or a CSV file with columns "
               "path,label[,split].")


@dataclass(frozen=True)
class FolderScan:
    """What a data folder holds: classes and, per split folder (or 'all'), (relative path, class) pairs."""

    root: Path
    layout: str  # "flat" or "presplit"
    classes: tuple[str, ...]
    samples: dict[str, list[tuple[str, str]]]  # multi-label: the class is "a|b" (names in class order), or ""
    ignored: tuple[str, ...] = field(default=())
    multi_label: bool = False
    empty: tuple[str, ...] = field(default=())  # empty class folders, relative to root (report_refusals)


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS
