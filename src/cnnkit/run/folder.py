"""The run folder: everything one training run needs and produces, so any command can take it as input.

``RunFolder`` is the one reader and writer of the run's record (``config.json``): training writes it when it starts
and when it ends, a baseline once, and ``store_decision`` when a command is asked to store a threshold.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from cnnkit._io import read_json, write_json
from cnnkit._version import __version__
from cnnkit.data.pool import PoolManifest
from cnnkit.data.split import SplitManifest
from cnnkit.errors import CnnkitError, ConfigError, RunError
from cnnkit.run.lock import locked, owner_alive, read_owner
from cnnkit.run.record import RECORD_VERSION, Decision, RunRecord
from cnnkit.run.results import Thresholds
from cnnkit.run.tasks import require

CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
POOL_FILE = "pool.json"  # `unlabelled`: the pool's manifest
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"


class RunFolder:
    """Paths inside a run folder and checked reads and writes of its files."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    config_path = property(lambda self: self.path / CONFIG_FILE)
    split_path = property(lambda self: self.path / SPLIT_FILE)
    pool_path = property(lambda self: self.path / POOL_FILE)
    weights_path = property(lambda self: self.path / WEIGHTS_FILE)
    metrics_path = property(lambda self: self.path / METRICS_FILE)
    checkpoint_dir = property(lambda self: self.path / "checkpoints")
    last_checkpoint = property(lambda self: self.path / "checkpoints" / "last.ckpt")
    log_dir = property(lambda self: self.path / "logs")
    index_dir = property(lambda self: self.path / "index")
    export_dir = property(lambda self: self.path / "export")  # model.onnx (+ model.int8.onnx), export.json
    export_info_path = property(lambda self: self.path / "export" / "export.json")

    def exists(self) -> bool:
        return self.config_path.exists()

    def occupied(self) -> RunError:
        """The refusal of a new run in this folder, which holds one: finished (choose another ``out``, or
        ``overwrite``) or not (``resume`` it, or ``overwrite``)."""
        status = self.read_record().status if self.config_path.exists() else "unknown"
        if status == "finished":
            return RunError(f"{self.path} already holds a run, finished. Choose another `out`, or replace it with "
                            "`overwrite`.")
        return RunError(f"{self.path} already holds a run that did not finish (status: {status}). Continue it with "
                        f"`cnnkit train --resume {self.path}` (Python: resume()), or start afresh with `overwrite`.")

    def read_file(self, path: Path, what: str) -> dict:
        if not self.path.is_dir():
            raise RunError(f"Run folder {self.path} does not exist.")
        if not path.exists():
            raise RunError(f"{self.path} is not a complete run folder: {path.name} ({what}) is missing.")
        try:
            data = read_json(path)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunError(f"{path} is broken ({e}); it is not valid JSON.") from None
        if not isinstance(data, dict):
            raise RunError(f"{path} is broken: expected a JSON object, found {type(data).__name__}.")
        return data

    def weights_digest(self) -> str:
        """SHA-256 of the weights file: an export made from other weights is out of date."""
        digest = hashlib.sha256()
        with open(self.weights_path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def read_export(self) -> dict | None:
        """What ``cnnkit export`` wrote (export.json), or None when the run has no export."""
        if not self.export_info_path.exists():
            return None
        return self.read_file(self.export_info_path, "the export's description")

    def read_record(self) -> RunRecord:
        """The run's typed record; RunError naming the file when it is missing or broken."""
        data = self.read_file(self.config_path, "the run's settings")
        for key in ("model", "classes", "preprocessing"):
            if key not in data:
                raise RunError(f"{self.config_path} is broken: it has no {key!r} entry.")
        try:
            return RunRecord.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError, CnnkitError) as e:
            raise RunError(f"{self.config_path} is broken: {type(e).__name__}: {e}") from None

    def network(self, record: RunRecord):
        """The record's network with fresh weights, once a build on the meta device (no memory) has shown that its
        tensors fit in the weights file: a crafted record cannot allocate more than the run's files hold. A point
        detector's run is refused: its network classifies no images (``point_network`` builds it)."""
        require(record.kind, "network", self.path)
        return self._fitting(record.build_network)

    def point_network(self, record: RunRecord):
        """A point detector's network with fresh weights, checked against the weights file as ``network`` is."""
        if not record.finds_points:
            raise RunError(f"{self.path} is not a point detector's run (task {record.task!r}).")
        return self._fitting(record.build_point_network)

    def _fitting(self, build):
        import torch

        with torch.device("meta"):
            probe = build()
        expected = sum(t.numel() * t.element_size() for t in probe.state_dict().values())
        if not self.weights_path.exists():
            raise RunError(f"{self.weights_path} does not exist: the run's weights are missing (deleted, or the "
                           "run stopped before its first epoch ended). Copy them back, or train it again with "
                           "`overwrite`.")
        size = self.weights_path.stat().st_size
        if expected > size * 1.05 + (1 << 20):
            raise RunError(f"{self.config_path} describes a network of {expected / 1e6:.1f} MB of tensors, but "
                           f"{self.weights_path.name} holds {size / 1e6:.1f} MB: the record and the weights do not "
                           "belong together.")
        return build()

    def status_note(self, record: RunRecord) -> str | None:
        """What a reader must know about a run that did not finish (None for a finished one)."""
        if record.status == "finished":
            return None
        owner = read_owner(self.path)
        if record.status == "training" and owner_alive(owner):
            return (f"Run {self.path} is still training (process {owner.get('pid')}); its weights are the best "
                    "so far.")
        how = (f"continue it with `cnnkit train --resume {self.path}` (Python: resume()), or start afresh with "
               "`overwrite`") if self.last_checkpoint.exists() else (
            "start it afresh with `overwrite`")
        if record.status == "training":
            weights = "its last finished epoch's" if record.finds_points else "the best of the epochs it finished"
            return (f"Run {self.path} was killed while training (its status says training, and no process holds "
                    f"it); its weights are {weights}: {how}.")
        if record.status == "failed":
            how = "fix the cause and start it afresh with `overwrite`" + (
                f" (or `cnnkit train --resume {self.path}` from its last checkpoint)"
                if self.last_checkpoint.exists() else "")
        return f"Run {self.path} is {record.status}: {record.status_reason}; {how}."

    def write_record(self, record: RunRecord) -> None:
        """Write the record atomically (readers never see half a file), in the current version."""
        write_json(self.config_path, record.replace(record_version=RECORD_VERSION, cnnkit_version=__version__).to_dict())

    def amend(self, **changes) -> RunRecord:
        """The one way to change a finished run's record (each caller is listed in ARCHITECTURE.md): read, replace
        the ``changes``, write atomically, under the writer's lock."""
        with locked(self.path):
            record = self.read_record().replace(**changes)
            self.write_record(record)
        return record

    def store_scan_thresholds(self, per_class: dict[str, float], source: str,
                              distance_factors: dict[str, float] | None = None) -> RunRecord:
        """Store each class's detection threshold (and least distance between detections, as a factor of the scan's
        default) for scanning, chosen on a validation photo; ``scan`` uses them from then on unless given one
        threshold (one distance)."""
        chosen = Thresholds(dict(per_class), source, None if distance_factors is None else dict(distance_factors))
        return self.amend(scan_thresholds=chosen)

    def store_decision(self, threshold: float, source: str) -> RunRecord:
        """Store a two-class decision threshold; ``predict`` and ``evaluate`` use it from then on."""
        record = self.read_record()
        if len(record.classes) != 2:
            raise ConfigError(f"A decision threshold needs exactly two classes; this model has "
                              f"{len(record.classes)}.")
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"Expected a threshold in [0, 1]. Received: {threshold}")
        return self.amend(decision=Decision(float(threshold), record.classes[1], source))

    def write_split(self, manifest: SplitManifest) -> None:
        write_json(self.split_path, manifest.to_dict())

    def write_pool(self, manifest: PoolManifest) -> None:
        """The pool of unlabelled images a run pseudo-labelled (``unlabelled``): paths and SHA-256, written whole."""
        write_json(self.pool_path, manifest.to_dict())

    def read_split(self) -> SplitManifest:
        data = self.read_file(self.split_path, "the train/val/test split")
        try:
            return SplitManifest.from_dict(data)
        except (KeyError, TypeError, ValueError) as e:
            raise RunError(f"{self.split_path} is broken: {e!r}.") from None

    def load_split(self, split: str, classes: list[str], preprocessing, multi_label: bool = False):
        """One split (train, val or test) of the run's saved split, decoded with ``preprocessing``."""
        from cnnkit.data.prepare import load_samples

        manifest = self.read_split()
        root = self.existing_data_root(manifest, f"the {split} split cannot be read")
        return load_samples(root, manifest.splits.get(split, []), classes, preprocessing, multi_label=multi_label)

    def data_root(self, manifest: SplitManifest) -> Path:
        """The split's data folder; a relative root (data kept inside the run, as ``demo`` does) is under the run."""
        root = Path(manifest.root)
        return root if root.is_absolute() else self.path / root

    def existing_data_root(self, manifest: SplitManifest, what: str) -> Path:
        root = self.data_root(manifest)
        if not root.is_dir():
            raise RunError(f"The run's data folder {root} is gone; {what}.")
        return root

    def portable_root(self, root: str | Path) -> str:
        """``root`` relative to the run folder when it lies inside it (the run can then be moved), else absolute."""
        root = Path(root).resolve()
        try:
            return root.relative_to(self.path.resolve()).as_posix()
        except ValueError:
            return str(root)
