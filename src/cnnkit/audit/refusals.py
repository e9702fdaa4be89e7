"""What training would refuse in a data set, reported by the audit beside its other findings (the audit goes on and
looks at whatever it can read): images with no class folders, a single class, an empty class folder, a CSV's likely
typo of a class name, classes too small for training's split to give validation an image, and unreadable images.
Each finding is one line, saying what training does and how to fix it."""

from __future__ import annotations

from pathlib import Path

from cnnkit.audit.inventory import Item
from cnnkit.config import TrainConfig
from cnnkit.data.layout import FolderScan
from cnnkit.data.split import make_split
from cnnkit.data.table import likely_typos, split_labels


def loose_images(data: str | Path, scan: FolderScan) -> bool:
    """Whether ``scan`` is a folder of images with no class folders (``scan_folder(loose_images=True)``'s one class)."""
    found = scan.samples.get("all", [])
    return Path(data).expanduser().is_dir() and bool(found) and all("/" not in path for path, _ in found)


def _names(items: list[Item], multi_label: bool) -> list[str]:
    return sorted({name for i in items for name in (split_labels(i.label) if multi_label else [i.label])})


def _classes(data: str | Path, scan: FolderScan, items: list[Item]) -> list[dict]:
    """No class folders, fewer than two classes with images, empty class folders."""
    found = []
    if loose_images(data, scan):
        found.append({"finding": "no class folders", "detail": (
            f"the {len(items)} images lie directly in {scan.root}, with no class folders: training refuses it; put "
            f"them in one sub-folder per class (audited here as one class, {scan.root.name!r})")})
    names = _names(items, scan.multi_label)
    if len(names) < 2 and not loose_images(data, scan):
        what = f"one class ({names[0]!r})" if names else "no class with images"
        found.append({"finding": "one class", "detail": (
            f"{what}: training needs at least two classes; add a class folder (or label) of other images")})
    for folder in scan.empty:
        found.append({"finding": "empty class folder", "detail": (
            f"class folder {scan.root / folder} holds no images: training refuses it; remove the folder or add "
            "images")})
    return found


def _split(scan: FolderScan, readable: list[Item]) -> list[dict]:
    """Classes that training's split (its default fractions and seed) leaves out of validation, and no validation
    split at all, which training refuses. Only where training draws the validation split itself."""
    if scan.layout == "presplit" and any(i.split == "val" for i in readable):
        return []
    pool = [(i.path, i.label) for i in readable]
    samples = {"all": pool} if scan.layout == "flat" else {"train": [s for s, i in zip(pool, readable)
                                                                     if i.split == "train"]}
    defaults = TrainConfig()
    split = make_split(str(scan.root), scan.layout, samples, defaults.val_fraction, defaults.test_fraction,
                       defaults.seed)
    if not split.splits["train"]:
        return []
    fractions = f"`val_fraction` {defaults.val_fraction}" + (
        f", `test_fraction` {defaults.test_fraction}" if scan.layout == "flat" else "")
    if not split.splits["val"]:
        return [{"finding": "no validation images", "detail": (
            f"training's split ({fractions}) leaves no validation image: every class is too small to give it one; "
            "training refuses it; add images, a val/ folder, or raise `val_fraction`")}]
    counts = {}
    for _, label in split.splits["train"]:
        counts[label] = counts.get(label, 0) + 1
    held = {label for name in ("val", "test") for _, label in split.splits[name]}
    return [{"finding": "class too small for validation", "detail": (
        f"class {label!r} has {count} image(s): training's split ({fractions}) holds none of them out for "
        "validation, so the class is never scored while training; add images of it")}
        for label, count in sorted(counts.items()) if label not in held and not scan.multi_label]


def _typos(data: str | Path, scan: FolderScan, items: list[Item]) -> list[dict]:
    """A CSV's class names that one image has, a few edits from a class with more (training refuses them)."""
    if Path(data).is_dir():
        return []
    labels = [i.label for i in items]
    found = []
    for name, near, images in likely_typos(labels, scan.multi_label):
        image = next(i.path for i in items if name in (split_labels(i.label) if scan.multi_label else [i.label]))
        found.append({"finding": "likely typo of a class name", "detail": (
            f"class {name!r} has one image ({image}) and is close to class {near!r} ({images} images): a typo? "
            f"training refuses it; correct its row in {Path(data).name}, or label more images {name!r}")})
    return found


def training_refusals(data: str | Path, scan: FolderScan, items: list[Item]) -> list[dict]:
    """What training would refuse (or leave unchecked) in ``scan``'s images ``items``, as findings: {"finding": a
    short name, "detail": one line}."""
    readable = [i for i in items if not i.error]
    found = _classes(data, scan, items) + _typos(data, scan, items)
    if readable and not any(f["finding"] in ("no class folders", "one class") for f in found):
        found += _split(scan, readable)
    unreadable = len(items) - len(readable)
    if unreadable:
        found.append({"finding": "unreadable images", "detail": (
            f"{unreadable} unreadable image(s) (listed under unreadable): training refuses them; fix or remove them, "
            "or leave them out with `skip_bad`")})
    return found
