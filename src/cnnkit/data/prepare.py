"""Turn a data folder into decoded, split arrays, with a decision about every unreadable file."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnkit.data.cache import DecodedCache
from cnnkit.data.decode import load_image, probe_image
from cnnkit.data.duplicates import copy_groups, identical_files, warn_duplicates
from cnnkit.data.duplicates import dedupe as choose_dropped
from cnnkit.data.files import scan_folder
from cnnkit.data.preprocess import Preprocessing, channel_stats
from cnnkit.data.split import SplitManifest, make_split
from cnnkit.data.table import join_labels, split_labels
from cnnkit.errors import DataError
from cnnkit.progress import Progress

log = logging.getLogger("cnnkit")

AUTO_SIZE_RANGE = (16, 64)
LARGER_SIDES = ((1000, 96), (5000, 128))  # (images in the set, the largest automatic side they allow)


class LazyImages:
    """(N, H, W, C) uint8 images decoded only when indexed: ``images[a:b]``, ``images[[i, j]]``, ``images[mask]`` and
    iteration decode just those (in threads), so a set of any size costs the memory of one batch. ``take`` keeps a
    subset lazy. An unreadable file raises DataError naming it when it is reached. With a ``cache``
    (``data.cache.DecodedCache``; ``index`` gives each image's position in it), pixels decoded once are read back
    from disk."""

    def __init__(self, paths: list[Path], preprocessing: Preprocessing, batch_size: int = 64, cache=None,
                 index: np.ndarray | None = None):
        self.paths, self.preprocessing, self.batch_size = list(paths), preprocessing, batch_size
        self.cache = cache
        self.index = np.arange(len(self.paths)) if index is None else np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.paths), *self.preprocessing.image_size, self.preprocessing.channels)

    def _indices(self, index) -> list[int]:
        if isinstance(index, slice):
            return list(range(len(self.paths)))[index]
        index = np.asarray(index)
        return list(np.flatnonzero(index) if index.dtype == bool else index.astype(int))

    def take(self, index) -> LazyImages:
        chosen = self._indices(index)
        return LazyImages([self.paths[i] for i in chosen], self.preprocessing, self.batch_size, self.cache,
                          self.index[chosen])

    def _decode(self, positions: list[int]) -> np.ndarray:
        if self.cache is None:
            return decode_images([self.paths[i] for i in positions], self.preprocessing)
        images, errors = self.cache.read(self.index[positions])
        bad = [e for e in errors if e]
        if bad:
            raise DataError(f"{len(bad)} unreadable image(s):\n  {_listing(bad)}")
        return images

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self._decode([int(index)])[0]
        return self._decode(self._indices(index))

    def __iter__(self):
        for start in range(0, len(self.paths), self.batch_size):
            yield from self[start:start + self.batch_size]


def encode_labels(names: list[str], classes: list[str], multi_label: bool = False) -> np.ndarray:
    """Class names as the network's targets: integer indices (N,), or for a multi-label set, where a name is
    ``a|b`` (or "" for none), a 0/1 float32 matrix (N, classes)."""
    index = {c: i for i, c in enumerate(classes)}
    if not multi_label:
        return np.array([index[c] for c in names], dtype=np.int64)
    matrix = np.zeros((len(names), len(classes)), dtype=np.float32)
    for row, name in enumerate(names):
        matrix[row, [index[c] for c in split_labels(name)]] = 1.0
    return matrix


def label_names(label: np.ndarray, classes: list[str]) -> str:
    """One encoded label as its name: the class, or for a multi-label row ``a|b`` ("" for none)."""
    label = np.asarray(label)
    return join_labels(c for c, v in zip(classes, label) if v > 0.5) if label.ndim else classes[int(label)]


def _unknown_classes(names: list[str], classes: list[str], multi_label: bool) -> list[str]:
    found = {c for name in names for c in (split_labels(name) if multi_label else [name])}
    return sorted(found - set(classes))


@dataclass
class ImageArrays:
    """Decoded images of one split: (N, H, W, C) uint8, labels (integer indices, or a 0/1 matrix (N, classes) for a
    multi-label set) and the files they came from."""

    images: np.ndarray | LazyImages
    labels: np.ndarray
    paths: list[str]  # relative to ``root``
    root: Path | None = None
    skipped: list[str] = field(default_factory=list)  # unreadable files left out (relative to ``root``)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def multi_label(self) -> bool:
        return self.labels.ndim == 2

    def subset(self, keep: np.ndarray) -> ImageArrays:
        """The images where ``keep`` is true."""
        images = self.images.take(keep) if isinstance(self.images, LazyImages) else self.images[keep]
        return ImageArrays(images, self.labels[keep], [p for p, k in zip(self.paths, keep) if k],
                           self.root, self.skipped)


@dataclass
class PreparedData:
    classes: list[str]
    manifest: SplitManifest
    preprocessing: Preprocessing
    splits: dict[str, ImageArrays]
    skipped: list[str]
    median_side: int = 0  # the median of the images' shorter sides, before resizing
    multi_label: bool = False
    dropped: dict = field(default_factory=dict)  # dedupe: path -> why it was left out
    conflicting: list[tuple[str, ...]] = field(default_factory=list)  # copies of one image labelled differently


def decode_or_error(path: Path, image_size: tuple[int, int], channels: int, interpolation: str = "bilinear",
                    crop_pct: float | None = None) -> tuple[np.ndarray | None, str | None]:
    """(the decoded image, None), or (None, why it could not be read): for loops that go on past a bad file."""
    try:
        return load_image(path, image_size, channels, interpolation, crop_pct), None
    except DataError as e:
        return None, str(e)


def _decode_many(paths: list[Path], image_size: tuple[int, int], channels: int, interpolation: str,
                 crop_pct: float | None = None):
    """Decode in threads (Pillow releases the GIL); return arrays and errors, both aligned with ``paths``."""
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:  # bounds decoding memory, too
        results = list(pool.map(lambda p: decode_or_error(p, image_size, channels, interpolation, crop_pct), paths))
    return [r[0] for r in results], [r[1] for r in results]


def _listing(errors: list[str]) -> str:
    return "\n  ".join(errors[:10]) + (f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else "")


def decode_images(paths: list[Path], preprocessing: Preprocessing, skip_bad: bool = False):
    """Decode ``paths`` with a run's preprocessing into (N, H, W, C) uint8.

    An unreadable file is an error; with ``skip_bad`` it is left out instead, every one listed in a warning, and the
    second value is the mask of the paths that decoded (without ``skip_bad``, the array alone is returned)."""
    arrays, errors = _decode_many(paths, preprocessing.image_size, preprocessing.channels, preprocessing.interpolation,
                                  preprocessing.crop_pct)
    bad = [e for e in errors if e]
    if bad and not skip_bad:
        raise DataError(f"{len(bad)} unreadable image(s); fix or remove them, or set `skip_bad` to leave them "
                        f"out:\n  {_listing(bad)}")
    if bad:
        log.warning("Skipping %d unreadable image(s):\n  %s", len(bad), "\n  ".join(bad))
    good = [a for a in arrays if a is not None]
    stacked = np.stack(good) if good else np.zeros((0, *preprocessing.image_size, preprocessing.channels), np.uint8)
    return (stacked, np.array([e is None for e in errors], dtype=bool)) if skip_bad else stacked


def report_unreadable(errors: list[str], skip_bad: bool) -> None:
    if not errors:
        return
    listing = _listing(errors)
    if not skip_bad:
        raise DataError(
            f"{len(errors)} unreadable image(s); fix or remove them, or set `skip_bad` to leave them out:\n  {listing}"
        )
    log.warning("Skipping %d unreadable image(s):\n  %s", len(errors), listing)


def auto_image_size(infos: list, default_image_size: tuple[int, int] | None) -> tuple[int, int]:
    """The model's own input size if it has one; else (height, width) with the images' median aspect ratio (square
    when within 10%), the longer side the median longer side clamped to 16..64, or up to 96 from 1,000 images and
    128 from 5,000 (a larger input has more pixels to learn from only when there are images enough)."""
    if default_image_size:
        return tuple(default_image_size)
    cap = max([AUTO_SIZE_RANGE[1], *(side for count, side in LARGER_SIDES if len(infos) >= count)])
    longest = int(np.clip(int(np.median([max(i.width, i.height) for i in infos])), AUTO_SIZE_RANGE[0], cap))
    aspect = float(np.median([i.width / max(i.height, 1) for i in infos]))  # width / height
    if abs(aspect - 1.0) < 0.1:
        return (longest, longest)
    short = max(AUTO_SIZE_RANGE[0], int(round(longest / max(aspect, 1 / aspect))))
    return (short, longest) if aspect > 1 else (longest, short)


AUTO_DISK_BYTES = 1 << 30  # decoded pixels above this go to disk with data_in "auto" (memory's peak is ~3x)


def on_disk(data_in: str, images: int, size: tuple[int, int], channels: int) -> bool:
    """Whether images are decoded into the disk cache and read back in DataLoader workers (``data_in`` "disk", or
    "auto" when the decoded pixels would exceed ``AUTO_DISK_BYTES``) rather than held in memory."""
    return data_in == "disk" or (data_in == "auto" and images * size[0] * size[1] * channels > AUTO_DISK_BYTES)


def prepare_training_data(
    root: str | Path,
    *,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    interpolation: str = "bilinear",
    crop_pct: float | None = None,
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    skip_bad: bool = False,
    default_image_size: tuple[int, int] | None = None,
    data_in: str = "memory",
    progress: bool = False,
    dedupe: bool = False,
    unlabelled: bool = False,
    val_folder: str = "test",
) -> PreparedData:
    """Scan, check and decode every image, split the good ones, and fit the standardisation on train only.

    Unreadable images stop the run with a list of them, unless ``skip_bad`` (then they are listed and left out).
    Without ``image_size``: the model's own input size if it has one, else the images' median aspect ratio and side
    (``auto_image_size``).
    Without ``channels``: 1 if every image is grayscale, else 3.
    ``normalization`` (mean, std) replaces the train split's own statistics (a pretrained backbone's).
    ``data_in`` (see ``on_disk``): "disk" decodes into ``data.cache.DecodedCache`` a chunk at a time, read back
    lazily (``LazyImages``). Copies of one image (``data.duplicates.copy_groups``) share a split, or with ``dedupe``
    are left out (``dropped``). ``val_folder``: see ``data.split.make_split``.
    ``unlabelled`` (an autoencoder's data): one class folder, or a folder of images without class folders, is enough.
    """
    scan = scan_folder(root, min_classes=1, loose_images=True) if unlabelled else scan_folder(root)
    scan, groups, dropped = _deduplicated(scan, dedupe)
    everything = [s for samples in scan.samples.values() for s in samples]
    infos, errors = _probe_all(scan.root, everything)
    good_infos = [i for i in infos if i is not None] or report_unreadable(errors, skip_bad=False) or []
    size = tuple(image_size) if image_size else auto_image_size(good_infos, default_image_size)
    n_channels = channels or (1 if all(i.grayscale for i in good_infos) else 3)
    decoded, stack, n_channels = _decode_all(scan, everything, infos, errors, (size, n_channels, interpolation,
                                             crop_pct), skip_bad, channels, on_disk(data_in, len(everything), size,
                                                                                    n_channels), progress)
    skipped = [rel for rel, _ in everything if rel not in decoded]
    samples = {name: [s for s in found if s[0] in decoded] for name, found in scan.samples.items()}
    copies = [] if dedupe else copy_groups(groups, decoded if stack is None else {}, scan)
    manifest = _split(scan, samples, copies, (val_fraction, test_fraction, seed, val_folder))
    classes = list(scan.classes)
    splits = {name: (stack or _stack)(found, decoded, classes, size, n_channels, scan.root, scan.multi_label)
              for name, found in manifest.splits.items()}
    if len(splits["train"]) == 0:
        raise DataError(f"No training images left in {scan.root} after leaving out unreadable ones.")
    mean, std = normalization or channel_stats(splits["train"].images)
    preprocessing = Preprocessing(size, n_channels, tuple(mean), tuple(std), interpolation, crop_pct)
    for arrays in splits.values():
        if isinstance(arrays.images, LazyImages):
            arrays.images.preprocessing = preprocessing
    conflicting = [tuple(p for p, _ in g) for g in copies if len({label for _, label in g}) > 1]
    return PreparedData(classes, manifest, preprocessing, splits, skipped,
                        int(np.median([min(i.width, i.height) for i in good_infos])), scan.multi_label, dropped,
                        conflicting)


def _split(scan, samples: dict, copies: list, settings: tuple) -> SplitManifest:
    """The split, copies of one image kept together, said in a line or two."""
    val_fraction, test_fraction, seed, val_folder = settings
    manifest = make_split(str(scan.root.resolve()), scan.layout, samples, val_fraction, test_fraction, seed,
                          copies=[[p for p, _ in g] for g in copies], val_folder=val_folder)
    _say_test_folder(scan, manifest, val_folder)
    if copies:
        warn_duplicates(scan.root, copies, {p: name for name, found in manifest.splits.items() for p, _ in found})
    return manifest


def _say_test_folder(scan, manifest: SplitManifest, val_folder: str) -> None:
    """One line on what a train/ + val/ folder's val/ became."""
    if scan.layout != "presplit" or "test" in scan.samples or "val" not in scan.samples:
        return
    if val_folder == "test":
        log.info("%s has train/ and val/ but no test/: val/ (%d images) is the test split, scored once; validation "
                 "is carved out of train/ (%d images). `val_folder` validation lets val/ choose the weights instead.",
                 scan.root, len(manifest.splits["test"]), len(manifest.splits["val"]))
    else:
        log.info("%s has train/ and val/ but no test/: val/ chooses the weights (`val_folder` validation), so the "
                 "run has no test split; score it with `cnnkit evaluate RUN --data FOLDER`.", scan.root)


def _decode_all(scan, everything, infos, errors, decoding, skip_bad, channels, disk: bool, progress: bool):
    """(decoded images or their cache positions, how a split's arrays are made, the channels), in memory or on
    disk."""
    size, n_channels = decoding[:2]
    log.info("Decoding %d images from %s at %dx%d (width x height), %d channel(s)%s", len(everything), scan.root,
             size[1], size[0], n_channels, ", into the disk cache" if disk else "")
    if disk:
        return (*_decode_to_disk(scan, everything, infos, errors, decoding, skip_bad, progress), n_channels)
    decoded, n_channels = _decode_to_memory(scan, everything, infos, errors, decoding, skip_bad, channels)
    return decoded, None, n_channels


def _deduplicated(scan, dedupe: bool):
    """The scan (without the dropped copies when ``dedupe``), the groups of identical files, and what was dropped."""
    from dataclasses import replace

    groups = identical_files(scan.root, [s for found in scan.samples.values() for s in found])
    if not dedupe or not groups:
        return scan, groups, {}
    dropped = choose_dropped(groups)
    log.info("dedupe: %d of the files in %d groups of identical files left out (%s)", len(dropped), len(groups),
             "one copy of each kept; copies with different classes all left out")
    samples = {name: [s for s in found if s[0] not in dropped] for name, found in scan.samples.items()}
    return replace(scan, samples=samples), groups, dropped


def _probe_all(root: Path, samples) -> tuple[list, list[str]]:
    """Each file's header (None where it cannot be read) and why the unreadable ones cannot."""
    infos, errors = [], []
    for rel, _ in samples:
        try:
            infos.append(probe_image(root / rel))
        except DataError as e:
            infos.append(None)
            errors.append(str(e))
    return infos, errors


def _decode_to_memory(scan, everything, infos, errors, decoding, skip_bad, channels):
    """{relative path: decoded array} of every readable image, and the channels (1 when the only colour files were
    left out)."""
    size, n_channels, interpolation, crop_pct = decoding
    arrays, decode_errors = _decode_many([scan.root / rel for rel, _ in everything], size, n_channels, interpolation,
                                         crop_pct)
    errors += [e for e, info in zip(decode_errors, infos) if e is not None and info is not None]
    report_unreadable(errors, skip_bad)
    decoded = {rel: a for (rel, _), a in zip(everything, arrays) if a is not None}
    if not channels and n_channels == 3 and all(i.grayscale for (rel, _), i in zip(everything, infos)
                                               if rel in decoded and i is not None):
        n_channels = 1  # the only colour files were left out: the data set is grayscale
        decoded = {rel: a[..., :1] for rel, a in decoded.items()}  # a gray image decoded as RGB has R = G = B
    return decoded, n_channels


def _decode_to_disk(scan, everything, infos, errors, decoding, skip_bad, progress):
    """Decode every readable image into the disk cache, a chunk at a time (rows already there are read back);
    {relative path: its position in the cache} of those that decode, and how a split's images are made."""

    readable = [rel for (rel, _), info in zip(everything, infos) if info is not None]
    cache = DecodedCache(scan.root, readable, *decoding)
    good = np.ones(len(readable), dtype=bool)
    with Progress(len(readable), "decode to disk", enabled=progress) as bar:
        for start in range(0, len(readable), 256):
            _, found = cache.read(np.arange(start, min(start + 256, len(readable))))
            errors += [e for e in found if e]
            good[start:start + 256] = [e is None for e in found]
            bar.update(len(found))
    report_unreadable(errors, skip_bad)
    log.info("Decoded images on disk: %s (%d images)", cache.folder, int(good.sum()))
    decoded = {rel: i for i, rel in enumerate(readable) if good[i]}

    def stack(samples, positions, classes, size, channels, root, multi_label) -> ImageArrays:
        prep = Preprocessing(size, channels, (0.0,) * channels, (1.0,) * channels, decoding[2], decoding[3])
        images = LazyImages([root / p for p, _ in samples], prep, cache=cache,
                            index=[positions[p] for p, _ in samples])
        return ImageArrays(images, encode_labels([c for _, c in samples], classes, multi_label),
                           [p for p, _ in samples], root)

    return decoded, stack


def _stack(samples, decoded, classes, size, channels, root: Path, multi_label: bool) -> ImageArrays:
    images = np.stack([decoded[p] for p, _ in samples]) if samples else np.zeros((0, *size, channels), np.uint8)
    return ImageArrays(images, encode_labels([c for _, c in samples], classes, multi_label),
                       [p for p, _ in samples], root)


def _lazy_samples(root: Path, samples: list[tuple[str, str]], encode, preprocessing: Preprocessing,
                  skip_bad: bool) -> ImageArrays:
    """Samples whose images decode when used; with ``skip_bad``, the files that do not decode are found and left
    out first (their pixels are not kept)."""
    good = np.ones(len(samples), dtype=bool)
    if skip_bad:  # one decoding pass that keeps only which files decode: a damaged body is found too
        for start in range(0, len(samples), 256):
            _, ok = decode_images([root / p for p, _ in samples[start:start + 256]], preprocessing, skip_bad=True)
            good[start:start + 256] = ok
    kept = [s for s, ok in zip(samples, good) if ok]
    return ImageArrays(LazyImages([root / p for p, _ in kept], preprocessing), encode([c for _, c in kept]),
                       [p for p, _ in kept], root, [p for (p, _), ok in zip(samples, good) if not ok])


def load_samples(root: str | Path, samples: list[tuple[str, str]], classes: list[str], preprocessing: Preprocessing,
                 skip_bad: bool = False, lazy: bool = False, multi_label: bool = False,
                 disk_cache: bool = False) -> ImageArrays:
    """Decode listed (relative path, class) samples with a run's preprocessing; an unreadable file is an error, or
    with ``skip_bad`` left out (listed in a warning and in ``skipped``). ``lazy``: decode when used
    (``LazyImages``), for sets larger than memory. ``multi_label``: classes read ``a|b``, labels are a matrix.
    ``disk_cache``: lazy, through the decoded-image cache on disk (``data.cache``), as training with data_in disk."""
    root = Path(root)
    unknown = _unknown_classes([c for _, c in samples], classes, multi_label)
    if unknown:
        raise DataError(f"Data in {root} has classes {unknown} that the model was not trained on (model: {classes}).")

    def encode(names):
        return encode_labels(names, classes, multi_label)

    if disk_cache:
        from cnnkit.data.cache import DecodedCache

        p = preprocessing
        cache = DecodedCache(root, [path for path, _ in samples], p.image_size, p.channels, p.interpolation,
                             p.crop_pct)
        return ImageArrays(LazyImages([root / path for path, _ in samples], p, cache=cache),
                           encode([c for _, c in samples]), [path for path, _ in samples], root)

    if lazy:
        return _lazy_samples(root, samples, encode, preprocessing, skip_bad)
    images, good = decode_images([root / p for p, _ in samples], preprocessing, skip_bad=True) if skip_bad else (
        decode_images([root / p for p, _ in samples], preprocessing), np.ones(len(samples), dtype=bool))
    kept = [s for s, ok in zip(samples, good) if ok]
    return ImageArrays(images, encode([c for _, c in kept]), [p for p, _ in kept], root,
                       [p for (p, _), ok in zip(samples, good) if not ok])


def load_folder(root: str | Path, classes: list[str], preprocessing: Preprocessing,
                shared_only: bool = False, skip_bad: bool = False,
                lazy: bool = False, multi_label: bool = False) -> tuple[ImageArrays, dict | None]:
    """All images of a class-folder tree or CSV (its test split if it has train/val/test), checked against
    ``classes``.

    Classes must match the model's, unless ``shared_only``: then images of classes the model does not know are left
    out, and the second value says what was left out (None when nothing was). For a ``multi_label`` model the data
    is a CSV whose labels read ``a|b``; a label the model does not know is an error, or with ``shared_only`` dropped
    from the images that carry it.
    """
    scan = scan_folder(root)
    if scan.multi_label and not multi_label:
        raise DataError(f"{scan.root} is multi-label (labels such as a|b), and the model is not: it predicts one "
                        "class per image.")
    samples = scan.samples.get("test") or [s for found in scan.samples.values() for s in found]
    if multi_label:
        return _multi_label_samples(scan, samples, classes, preprocessing, shared_only, skip_bad, lazy)
    missing, extra = sorted(set(classes) - set(scan.classes)), sorted(set(scan.classes) - set(classes))
    note = None
    if (missing or extra) and not shared_only:
        raise DataError(
            f"Classes of {scan.root} do not match the model's. Missing from the data: {missing or 'none'}; "
            f"not known to the model: {extra or 'none'}. Set `shared_classes` to evaluate on the shared ones only."
        )
    if missing or extra:
        kept = [s for s in samples if s[1] in classes]
        if not kept:
            raise DataError(f"{scan.root} shares no class with the model (model: {classes}; data: {scan.classes}).")
        note = {"missing": missing, "extra": extra, "left_out": len(samples) - len(kept)}
        log.warning("Evaluating on the shared classes only: %d image(s) of %s left out; model classes absent "
                    "from the data: %s.", note["left_out"], extra or "no class", missing or "none")
        samples = kept
    return load_samples(scan.root, samples, classes, preprocessing, skip_bad, lazy), note


def _multi_label_samples(scan, samples, classes, preprocessing, shared_only, skip_bad, lazy):
    """A multi-label model's data: every label known to the model, or with ``shared_only`` unknown ones dropped."""
    extra = _unknown_classes([c for _, c in samples], classes, True)
    note = None
    if extra and not shared_only:
        raise DataError(f"{scan.root} has labels {extra} that the model was not trained on (model: {classes}). Set "
                        "`shared_classes` to drop them and score the model's labels only.")
    if extra:
        changed = sum(1 for _, c in samples if set(split_labels(c)) & set(extra))
        samples = [(p, join_labels(n for n in split_labels(c) if n in classes)) for p, c in samples]
        note = {"missing": sorted(set(classes) - set(scan.classes)), "extra": extra, "left_out": 0,
                "labels_dropped_from": changed}
        log.warning("Scoring the model's labels only: %s dropped from %d image(s).", extra, changed)
    return load_samples(scan.root, samples, classes, preprocessing, skip_bad, lazy, multi_label=True), note


def split_counts(splits: dict[str, ImageArrays], classes: list[str]) -> dict[str, dict[str, int]]:
    """Images per split and class (multi-label: the images that carry each label)."""
    return {name: {c: int((arrays.labels[:, i] > 0.5).sum() if arrays.multi_label else (arrays.labels == i).sum())
                   for i, c in enumerate(classes)}
            for name, arrays in splits.items()}


def report_counts(counts: dict[str, dict[str, int]]) -> None:
    """Log images per class and split, and warn about imbalance before any training starts."""
    classes = list(next(iter(counts.values())))
    width = max(len(c) for c in classes)
    log.info("%s  %s", "class".ljust(width), "  ".join(f"{s:>6}" for s in counts))
    for c in classes:
        log.info("%s  %s", c.ljust(width), "  ".join(f"{counts[s][c]:>6}" for s in counts))
    train = counts["train"]
    ratio = max(train.values()) / max(min(train.values()), 1)
    if ratio >= 3:
        rare = min(train, key=train.get)
        log.warning("Classes are imbalanced: %.1f:1 between the largest and the smallest ('%s', %d training images). "
                    "Look at balanced accuracy and per-class recall, not accuracy alone.", ratio, rare, train[rare])
