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


def copy_groups(groups: list[list[tuple[str, str]]], decoded: dict, scan) -> list[list[tuple[str, str]]]:
    """Groups of copies of one image: files with identical bytes, joined with images whose decoded pixels are
    identical (the same picture saved again, in another format or with other metadata). ``decoded``: path -> array
    of the images decoded in memory (empty: identical bytes only)."""
    import numpy as np

    labels = {path: label for found in scan.samples.values() for path, label in found}
    parent: dict[str, str] = {}

    def root(path: str) -> str:
        while parent.get(path, path) != path:
            path = parent[path]
        return path

    def join(a: str, b: str) -> None:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        parent[root(b)] = root(a)

    for group in groups:
        for path, _ in group[1:]:
            join(group[0][0], path)
    by_pixels: dict[str, str] = {}
    for path in sorted(decoded):
        if path not in labels:
            continue
        digest = hashlib.sha256(np.ascontiguousarray(decoded[path]).tobytes()).hexdigest()
        if digest in by_pixels:
            join(by_pixels[digest], path)
        else:
            by_pixels[digest] = path
    members: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(parent):
        if path in labels:
            members.setdefault(root(path), []).append((path, labels[path]))
    return [group for group in members.values() if len(group) > 1]


def warn_duplicates(root: Path, groups: list[list[tuple[str, str]]], splits: dict[str, str]) -> None:
    """Say how many groups of copies there are, that each sits in one split where cnnkit drew it, how many carry
    different classes, and how many cross the user's own train/val/test folders (``splits``: path -> split)."""
    if not groups:
        return
    crossing_classes = sum(len({label for _, label in g}) > 1 for g in groups)
    crossing_splits = sum(len({splits.get(path) for path, _ in g} - {None}) > 1 for g in groups)
    log.warning("%d groups of copies of one image in %s (identical files or pixels), each kept in one split where "
                "cnnkit draws the split; %d labelled differently%s. See them with `cnnkit audit %s`; train on one "
                "copy each with `dedupe`.", len(groups), root, crossing_classes,
                f", {crossing_splits} across your own train/val/test folders (those inflate the test score)"
                if crossing_splits else "", root)
