"""The cheap duplicate check of every training: files with identical bytes, found before any image is decoded."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

log = logging.getLogger("cnnkit")


def identical_files(root: Path, samples: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Groups of (path, class) whose files have the same bytes (SHA-256), in path order; unreadable files are left
    to the decoding that follows."""
    by_digest: dict[str, list[tuple[str, str]]] = {}
    for path, label in sorted(samples):
        try:
            digest = hashlib.sha256((root / path).read_bytes()).hexdigest()
        except OSError:
            continue
        by_digest.setdefault(digest, []).append((path, label))
    return [group for group in by_digest.values() if len(group) > 1]


def dedupe(groups: list[list[tuple[str, str]]]) -> dict[str, str]:
    """What ``dedupe`` drops, path -> why: all but the first copy of a group with one class; every copy of a group
    whose copies carry different classes (no label can be trusted)."""
    dropped = {}
    for group in groups:
        classes = sorted({label for _, label in group})
        if len(classes) > 1:
            dropped.update({path: f"identical files labelled {' and '.join(classes)}" for path, _ in group})
        else:
            dropped.update({path: f"a copy of {group[0][0]}" for path, _ in group[1:]})
    return dropped


def warn_duplicates(root: Path, groups: list[list[tuple[str, str]]], splits: dict[str, str]) -> None:
    """Say how many identical files cross classes and splits (``splits``: path -> split), and how to see them."""
    if not groups:
        return
    crossing_classes = sum(len({label for _, label in g}) > 1 for g in groups)
    crossing_splits = sum(len({splits.get(path) for path, _ in g} - {None}) > 1 for g in groups)
    log.warning("%d groups of identical files in %s (%d with different classes, %d across train/val/test: those "
                "inflate the test score). See them with `cnnkit audit %s --out AUDIT_DIR`; train on one copy each "
                "with `dedupe`.", len(groups), root, crossing_classes, crossing_splits, root)
