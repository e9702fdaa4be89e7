"""A pool of images nobody labelled (``unlabelled``): found recursively in a folder, each file named with the SHA-256
of its bytes, copies of the run's labelled images (any split, the test split included) left out, so that no labelled
image is ever pseudo-labelled. The run keeps the manifest (``pool.json``) beside its split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

from cnnkit.data.layout import IMAGE_EXTENSIONS, is_image_file
from cnnkit.errors import DataError


@dataclass(frozen=True)
class PoolImage:
    path: str  # relative to the pool's root
    sha256: str
    pseudo_label: str | None = None  # the class the head gave it in the kept (or last tried) round; None: not chosen


@dataclass(frozen=True)
class PoolManifest:
    """The pool as the run saw it: its root, the images it used, and those it left out with the reason."""

    root: str
    images: tuple[PoolImage, ...]
    left_out: tuple[tuple[str, str], ...] = ()  # (path, why)

    def to_dict(self) -> dict:
        return {"root": self.root, "images": [[i.path, i.sha256, i.pseudo_label] for i in self.images],
                "left_out": [list(item) for item in self.left_out]}

    @classmethod
    def from_dict(cls, data: dict) -> PoolManifest:
        return cls(str(data["root"]), tuple(PoolImage(str(p), str(h), *rest) for p, h, *rest in data["images"]),
                   tuple((str(p), str(w)) for p, w in data.get("left_out") or ()))

    def labelled(self, index: list[int], labels: list[str]) -> PoolManifest:
        """The manifest with the pseudo-labels of the images at ``index``."""
        given = dict(zip(index, labels))
        return replace(self, images=tuple(replace(image, pseudo_label=given.get(i))
                                          for i, image in enumerate(self.images)))

    def paths(self) -> list[Path]:
        return [Path(self.root) / image.path for image in self.images]

    def without(self, unreadable: list[str]) -> PoolManifest:
        """The manifest with the files that could not be decoded moved to ``left_out``."""
        bad = set(unreadable)
        return PoolManifest(self.root, tuple(i for i in self.images if i.path not in bad),
                            self.left_out + tuple((p, "unreadable") for p in unreadable))


def pool_files(folder: str | Path) -> list[Path]:
    """The image files under ``folder`` (any depth, sorted); DataError naming ``unlabelled`` and the folder when it
    is missing, not a folder, or holds no images."""
    root = Path(folder)
    if not root.exists():
        raise DataError(f"`unlabelled`: the pool folder {root} does not exist. Give a folder of images nobody "
                        "labelled.")
    if not root.is_dir():
        raise DataError(f"`unlabelled`: {root} is not a folder. Give a folder of images nobody labelled (searched "
                        "recursively).")
    files = sorted(p for p in root.rglob("*") if is_image_file(p) and p.is_file())
    if not files:
        raise DataError(f"`unlabelled`: the pool folder {root} holds no images (searched recursively). Allowed "
                        f"formats: {', '.join(IMAGE_EXTENSIONS)}.")
    return files


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def scan_pool(folder: str | Path, labelled: list[Path]) -> PoolManifest:
    """The pool's manifest: every image under ``folder`` with its SHA-256; a file with the bytes of one of the
    ``labelled`` files (or of an earlier pool file) or that cannot be read is left out, with the reason."""
    root = Path(folder).resolve()
    known = {d for d in map(_digest, labelled) if d}
    kept, left_out, seen = [], [], set()
    for path in pool_files(root):
        name = path.relative_to(root).as_posix()
        digest = _digest(path)
        if digest is None:
            left_out.append((name, "unreadable"))
        elif digest in known:
            left_out.append((name, "a copy of a labelled image"))
        elif digest in seen:
            left_out.append((name, "a copy of another pool image"))
        else:
            seen.add(digest)
            kept.append(PoolImage(name, digest))
    if not kept:
        raise DataError(f"`unlabelled`: every image in the pool folder {root} is a copy of a labelled image or "
                        "unreadable; give images that are not in the labelled set.")
    return PoolManifest(str(root), tuple(kept), tuple(left_out))
