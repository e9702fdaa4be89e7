"""What the benchmarks need from outside this repository, where it is expected and where to get it.

A script checks its data before any work and, when it is missing, prints one line (what is missing, where to get it)
and exits 0: a benchmark without its data is skipped, not failed. Only the standard library here, so the check costs
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OutsideData:
    """A data set the repository does not hold: its usual folder, the files that must be in it, where to get it."""

    name: str
    default: Path
    holds: tuple[str, ...]
    source: str

    def missing(self, folder: Path, flag: str = "--data", holds: tuple[str, ...] | None = None) -> bool:
        """True, after printing the one line that says so, when `folder` lacks what this data set holds."""
        folder = Path(folder)
        absent = [part for part in (holds if holds is not None else self.holds) if not (folder / part).exists()]
        if not folder.is_dir():
            print(f"skipped: {folder} not found; get {self.name} ({self.source}) and pass its folder with {flag}")
        elif absent:
            print(f"skipped: {folder} has no {', '.join(absent)}; get {self.name} ({self.source}) and pass its "
                  f"folder with {flag}")
        return not folder.is_dir() or bool(absent)

    def missing_file(self, path: Path, argument: str) -> bool:
        """True, after printing the one line that says so, when the file `path` (one of this data set's, given as
        the command line's `argument`) is not there."""
        if Path(path).is_file():
            return False
        print(f"skipped: {path} not found; it comes with {self.name} ({self.source}); pass it as {argument}")
        return True


HYMENOPTERA = OutsideData(
    "hymenoptera", Path("../shared/data/hymenoptera"), ("train", "val"),
    "the ants-and-bees set of PyTorch's transfer-learning tutorial, "
    "https://download.pytorch.org/tutorial/hymenoptera_data.zip, unzipped: train/ and val/; "
    "the team keeps it in ../shared/data, see ../shared/data/README.md")

SEALIONS = OutsideData(
    "the sea-lion data", Path("../shared/data/sealions"), ("patches/train", "scenes/5.jpg", "scenes/5-dots.csv"),
    "cut from NOAA Fisheries' Steller sea lion count, Kaggle 2017, "
    "https://www.kaggle.com/c/noaa-fisheries-steller-sea-lion-population-count, by a public demo of patch-wise "
    "CNNs: 96x96 patches/{train,val,test}/CLASS/ and scenes/5.jpg with its dots scenes/5-dots.csv; "
    "the team keeps it in ../shared/data, see ../shared/data/README.md")


def missing_made(path: Path, made_by: str, holds: str = "") -> bool:
    """True, after printing the one line that says so, when `path` (something an earlier benchmark makes, such as a
    run folder; with `holds`, a file it must hold) is not there; `made_by` says what makes it."""
    path = Path(path)
    if (path / holds).exists():
        return False
    print(f"skipped: {path / holds} not found; make it with {made_by}")
    return True
