"""Seeded, stratified splits, saved with the run so evaluation never sees a training image."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

import numpy as np

from cnnkit.errors import DataError


def leaves_root(path: str) -> bool:
    """Whether a split's path points outside its data folder (absolute, or through '..'): ``make_split`` never
    writes one, and a run's split that lists one is refused."""
    return PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute() or ".." in \
        PurePosixPath(path.replace("\\", "/")).parts


@dataclass(frozen=True)
class SplitManifest:
    """Which file went where: ``splits[name]`` lists (path relative to ``root``, class name)."""

    root: str
    layout: str
    seed: int
    val_fraction: float
    test_fraction: float
    splits: dict[str, list[tuple[str, str]]]

    def to_dict(self) -> dict:
        return {
            "root": self.root,
            "layout": self.layout,
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "splits": {name: [list(s) for s in samples] for name, samples in self.splits.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> SplitManifest:
        """Read and check: every path must stay inside the data folder (relative, no '..'), so a crafted split
        cannot point evaluation at files elsewhere."""
        splits = {name: [(str(p), str(c)) for p, c in samples] for name, samples in data["splits"].items()}
        for name, samples in splits.items():
            for path, _ in samples:
                if leaves_root(path):
                    raise ValueError(f"the {name} split lists {path!r}, a path outside the data folder")
        return cls(data["root"], data["layout"], int(data["seed"]), float(data["val_fraction"]),
                   float(data["test_fraction"]), splits)


def _units(labels: list[str], groups: list[int] | None) -> tuple[list[str], list[list[int]]]:
    """Indices that must share a split (a group of copies, else each index alone) and each unit's class (its
    first member's)."""
    if groups is None:
        return labels, [[i] for i in range(len(labels))]
    members: dict[int, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    units = sorted(members.values())
    return [labels[unit[0]] for unit in units], units


def stratified_indices(labels: list[str], fractions: dict[str, float], seed: int,
                       groups: list[int] | None = None) -> dict[str, list[int]]:
    """Split indices class by class; each named split gets ``round(n * fraction)`` (at least one when n >= 3).

    What is left goes to 'train'. The same labels and seed always give the same split. ``groups`` (a group id per
    index): indices of one group go to the same split, drawn as one unit of their first member's class (copies of
    an image never sit on both sides of a split); without groups, or with singleton groups, the split is the same.
    """
    unit_labels, units = _units(labels, groups)
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {"train": [], **{name: [] for name in fractions}}
    by_class: dict[str, list[int]] = {}
    for i, label in enumerate(unit_labels):
        by_class.setdefault(label, []).append(i)
    for label in sorted(by_class):
        idx = np.array(by_class[label])
        idx = idx[rng.permutation(len(idx))]
        start = 0
        for name, fraction in fractions.items():
            take = int(len(idx) * fraction + 0.5)  # round half up
            if fraction > 0 and len(idx) >= 3:
                take = max(take, 1)
            take = min(take, len(idx) - start - 1)  # keep at least one image for training
            out[name].extend(j for u in idx[start:start + max(take, 0)] for j in units[int(u)])
            start += max(take, 0)
        out["train"].extend(j for u in idx[start:] for j in units[int(u)])
    return {name: sorted(ids) for name, ids in out.items()}


def make_split(
    root: str, layout: str, samples: dict[str, list[tuple[str, str]]], val_fraction: float, test_fraction: float,
    seed: int, copies: list[list[str]] = (), val_folder: str = "test",
) -> SplitManifest:
    """Split a flat folder into train/val/test, or keep given splits (carving val from train when absent).

    ``copies``: groups of paths (identical images) kept in one split wherever cnnkit draws the split.
    ``val_folder``: with train/ and val/ but no test/, "test" scores val/ once as the test split and carves
    validation out of train/; "validation" lets val/ choose the weights (the run then has no test split).
    """
    outside = next((p for found in samples.values() for p, _ in found if leaves_root(p)), None)
    if outside is not None:  # a scan's paths are relative to its root; refused before any training, never after
        raise DataError(f"{outside!r} lies outside the data folder {root}: a split lists paths relative to it.")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise DataError(f"Expected {name} in [0, 1). Received: {name}={value}")
    if layout == "flat":
        pool, fractions = samples["all"], {"val": val_fraction, "test": test_fraction}
        if val_fraction + test_fraction >= 1:
            raise DataError(f"val_fraction + test_fraction must be below 1. Received: {val_fraction + test_fraction}")
        kept: dict[str, list[tuple[str, str]]] = {}
    elif "val" in samples and "test" not in samples and val_folder == "test":
        pool, fractions = samples["train"], {"val": val_fraction}
        kept = {"test": list(samples["val"])}
    else:
        pool, fractions = samples["train"], ({} if "val" in samples else {"val": val_fraction})
        kept = {name: list(samples[name]) for name in ("val", "test") if name in samples}
    parts = stratified_indices([c for _, c in pool], fractions, seed, _group_ids(pool, copies))
    splits = {name: [pool[i] for i in ids] for name, ids in parts.items()}
    splits.update(kept)
    ordered = {name: splits.get(name, []) for name in ("train", "val", "test")}
    return SplitManifest(root, layout, seed, val_fraction, test_fraction, ordered)


def _group_ids(pool: list[tuple[str, str]], copies: list[list[str]]) -> list[int] | None:
    """A group id per sample of ``pool`` (copies share one), or None when no copies lie in the pool."""
    position = {path: i for i, (path, _) in enumerate(pool)}
    ids = list(range(len(pool)))
    joined = False
    for group in copies:
        inside = [position[p] for p in group if p in position]
        for i in inside[1:]:
            ids[i] = ids[inside[0]]
            joined = True
    return ids if joined else None
