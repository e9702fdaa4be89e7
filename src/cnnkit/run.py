"""The run folder: everything one training run needs and produces, so any command can take it as input."""

from __future__ import annotations

import json
from pathlib import Path

from cnnkit._io import read_json
from cnnkit.errors import RunError

CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"


class RunFolder:
    """Paths inside a run folder and checked reads of its files."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    config_path = property(lambda self: self.path / CONFIG_FILE)
    split_path = property(lambda self: self.path / SPLIT_FILE)
    weights_path = property(lambda self: self.path / WEIGHTS_FILE)
    metrics_path = property(lambda self: self.path / METRICS_FILE)
    checkpoint_dir = property(lambda self: self.path / "checkpoints")
    last_checkpoint = property(lambda self: self.path / "checkpoints" / "last.ckpt")
    log_dir = property(lambda self: self.path / "logs")

    def exists(self) -> bool:
        return self.config_path.exists()

    def read_file(self, path: Path, what: str) -> dict:
        if not self.path.is_dir():
            raise RunError(f"Run folder {self.path} does not exist.")
        if not path.exists():
            raise RunError(f"{self.path} is not a complete run folder: {path.name} ({what}) is missing.")
        try:
            return read_json(path)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunError(f"{path} is broken ({e}); it is not valid JSON.") from None

    def read_config(self) -> dict:
        config = self.read_file(self.config_path, "the run's settings")
        for key in ("model", "classes", "preprocessing"):
            if key not in config:
                raise RunError(f"{self.config_path} is broken: it has no {key!r} entry.")
        return config

    def data_root(self, manifest) -> Path:
        """The split's data folder; a relative root (data kept inside the run, as ``demo`` does) is under the run."""
        root = Path(manifest.root)
        return root if root.is_absolute() else self.path / root

    def portable_root(self, root: str | Path) -> str:
        """``root`` relative to the run folder when it lies inside it (the run can then be moved), else absolute."""
        root = Path(root).resolve()
        try:
            return root.relative_to(self.path.resolve()).as_posix()
        except ValueError:
            return str(root)

    def read_split(self):
        from cnnkit.data.split import SplitManifest

        data = self.read_file(self.split_path, "the train/val/test split")
        try:
            return SplitManifest.from_dict(data)
        except (KeyError, TypeError, ValueError) as e:
            raise RunError(f"{self.split_path} is broken: {e!r}.") from None
