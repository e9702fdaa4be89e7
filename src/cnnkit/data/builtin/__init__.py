"""Datasets that need no download, written out as ordinary class folders (or, multi-label, as a CSV of labels)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cnnkit.errors import ConfigError, DataError


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    description: str
    export: Callable[..., dict[str, int]]
    train_on: str = ""  # what to train on, inside the exported folder ("" the folder itself)


def _digits(out: Path, seed: int = 0, balanced: bool = False, size: int | None = None) -> dict[str, int]:
    from cnnkit.data.builtin.digits import export_digits

    return export_digits(out)


def _wafers(out: Path, seed: int = 0, balanced: bool = False, size: int | None = None) -> dict[str, int]:
    from cnnkit.data.builtin.wafers import export_wafers

    return export_wafers(out, seed=seed, balanced=balanced, per_class=size)


def _wafers_mixed(out: Path, seed: int = 0, balanced: bool = False, size: int | None = None) -> dict[str, int]:
    from cnnkit.data.builtin.wafers import export_mixed_wafers

    return export_mixed_wafers(out, seed=seed, per_combination=size)


def _aerial(out: Path, seed: int = 0, balanced: bool = False, size: int | None = None) -> dict[str, int]:
    from cnnkit.data.builtin.aerial import export_aerial

    return export_aerial(out, seed=seed, per_class=size)


_DATASETS = {
    d.name: d
    for d in (
        BuiltinDataset("digits", "scikit-learn's real 8x8 handwritten digits: 1,797 grayscale images, 10 classes.",
                       _digits),
        BuiltinDataset("wafers", "Synthetic wafer defect maps in the 9 WM-811K classes; imbalanced like a real fab "
                       "('none' common, 'Near-full' rare) unless balanced.", _wafers),
        BuiltinDataset("wafers-mixed", "Synthetic multi-label wafer maps: none, one or two of 6 defect patterns "
                       "(as in MixedWM38); images/ and labels.csv (labels such as Center|Scratch).", _wafers_mixed,
                       "labels.csv"),
        BuiltinDataset("aerial", "Synthetic aerial scenes (boats, cars, trees on ground and water) with dot files, "
                       "and 24x24 patches in patches/{train,val,test}: for cnnkit scan.", _aerial),
    )
}


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def describe_dataset(name: str) -> str:
    return _get(name).description


def training_path(name: str, folder: str | Path) -> Path:
    """What to train on once ``name`` is exported into ``folder``: the folder, or the CSV of labels in it."""
    entry = _get(name).train_on
    return Path(folder) / entry if entry else Path(folder)


def _get(name: str) -> BuiltinDataset:
    if name not in _DATASETS:
        raise ConfigError(f"Unknown built-in dataset {name!r}. Available: {', '.join(list_datasets())}.")
    return _DATASETS[name]


def export_dataset(
    name: str, out_dir: str | Path, seed: int = 0, balanced: bool = False, size: int | None = None
) -> dict[str, int]:
    """Write the built-in dataset ``name`` as ``out_dir/<class>/*.png`` (a multi-label one as ``out_dir/images`` and
    ``out_dir/labels.csv``: see ``training_path``); return the count per class (or per label set).

    ``size`` is the number of images per class for synthetic sets (balanced) or scales their default counts.
    Refuses to write into a folder that already holds files, so no user file is overwritten.
    """
    dataset = _get(name)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"Folder {out} is not empty; choose a new folder to export {name!r} into.")
    out.mkdir(parents=True, exist_ok=True)
    return dataset.export(out, seed=seed, balanced=balanced, size=size)
