"""The served runs: each run's record, scores and models, whether the page offers to scan with it, and which run the
page opens on."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from cnnkit.errors import CnnkitError
from cnnkit.run import METRICS_FILE, RunFolder, RunRecord
from cnnkit.run.tasks import require
from cnnkit.scan.verify import background_classes

# The first columns of the manifest.csv that `cnnkit patches` writes beside its class folders (patches/cut.py).
PATCHES_MANIFEST = "manifest.csv"
PATCHES_HEADER = "file,class,photo,"


@dataclass(frozen=True)
class ScanOffer:
    """Whether the page may scan large photos with a run (``available``), whether its box starts ticked (``offered``,
    the API's default too), and why, in words."""

    available: bool
    offered: bool
    reason: str


def scan_offer(record: RunRecord, data_root: Path | None) -> ScanOffer:
    """A scan is offered for a run trained on patches (the windows a scan classifies), never for its input size:
    a scratch CNN on photos has small inputs too, and a photo it should classify is then cut into windows."""
    if record.model.is_baseline or record.reconstructs or record.multi_label:
        kind = "a baseline" if record.model.is_baseline else "an autoencoder" if record.reconstructs else (
            "a multi-label run")
        return ScanOffer(False, False, f"{kind} cannot scan: scanning needs a single-label CNN patch classifier")
    evidence = trained_on_patches(record, data_root)
    if evidence:
        return ScanOffer(True, True, f"trained on patches ({evidence}): large photos are scanned window by window")
    return ScanOffer(True, False, "trained on whole images: each image is classified (tick to scan a large photo "
                                  "window by window instead)")


def trained_on_patches(record: RunRecord, data_root: Path | None) -> str | None:
    """What shows that a run was trained on patches, in words, or None: its data folder is `cnnkit patches` output,
    its scan thresholds were chosen on a dotted photo, or it has a background class (what a scan ignores when it
    counts; `cnnkit patches` and the aerial demo write one)."""
    manifest = data_root / PATCHES_MANIFEST if data_root is not None else None
    if manifest is not None and manifest.is_file():
        with open(manifest, encoding="utf-8", errors="replace") as f:
            if f.readline().startswith(PATCHES_HEADER):
                return "its data folder is `cnnkit patches` output"
    if record.scan_thresholds:
        return "its scan thresholds were chosen on a dotted photo"
    background = background_classes(list(record.classes))
    if background:
        return f"it has a {background[0]!r} class"
    return None


class ServedRun:
    """One run: its folder, record, scan offer and test scores, and its models and index, loaded on first use.
    Predictions (and nearest images) use ``predictor``, ``torch_predictor`` and ``index``; scans use a model of their
    own (``scan_predictor``), so that a prediction never waits for a scan: each is used by one thread at a time
    (``serve.work.Lane``)."""

    def __init__(self, run_id: str, path: Path):
        self.id, self.path, self.folder = run_id, path, RunFolder(path)
        self.record = self.folder.read_record()
        require(self.record.kind, "serve", path)  # the page classifies images
        self._predictor = self._torch = self._index = self._scanner = None
        self.tta = bool(self.record.augment) and not self.record.model.is_baseline  # what TTA draws on
        self.scan = scan_offer(self.record, self._data_root())

    def _data_root(self) -> Path | None:
        try:
            return self.folder.data_root(self.folder.read_split())
        except CnnkitError:  # no split saved: nothing tells where the images came from
            return None

    def predictor(self):
        """Loaded once: the ONNX export when it is current, else the network (``Predictor.load``'s choice)."""
        if self._predictor is None:
            from cnnkit.inference import Predictor

            self._predictor = Predictor.load(self.path)
        return self._predictor

    def torch_predictor(self):
        """The network itself, for what needs it (test-time augmentation, latent vectors, scans)."""
        predictor = self.predictor()
        if predictor.backend == "torch":
            return predictor
        if self._torch is None:
            from cnnkit.inference import Predictor

            self._torch = Predictor.load(self.path, backend="torch")
        return self._torch

    def scan_predictor(self):
        """The network, loaded again for scans alone."""
        if self._scanner is None:
            from cnnkit.inference import Predictor

            self._scanner = Predictor.load(self.path, backend="torch")
        return self._scanner

    def index(self):
        if self._index is None:
            from cnnkit.latent.index import run_index

            self._index = run_index(self.path, self.torch_predictor())
        return self._index

    def test_scores(self) -> dict | None:
        """The run's scores on its test split (metrics.json), or None when it has none."""
        path = self.path / METRICS_FILE
        metrics = json.loads(path.read_text()) if path.exists() else {}
        if metrics.get("split") != "test":
            return None
        return {k: metrics.get(k) for k in ("n", "accuracy", "balanced_accuracy", "macro_f1", "auc")}

    @property
    def val_accuracy(self) -> float | None:
        """The kept epoch's validation accuracy (a baseline's: cross-validated), or None."""
        return self.record.result.best_val_acc if self.record.result else None

    def summary(self) -> dict:
        record = self.record
        return {"id": self.id, "classes": list(record.classes), "model": record.model.name,
                "strategy": record.strategy, "multi_label": record.multi_label,
                "threshold": record.decision.threshold if record.decision else None,
                "thresholds": dict(zip(record.classes, record.thresholds)) if record.thresholds else None,
                "tta": self.tta,
                "latent": not record.model.is_baseline,
                "input": list(record.preprocessing.image_size),
                "scan": asdict(self.scan),
                "test": self.test_scores(),
                "validation": {"accuracy": self.val_accuracy} if self.val_accuracy is not None else None,
                "report": (self.path / "report.html").exists()}


def run_ids(paths: list[Path]) -> dict[str, Path]:
    """A short, unique id per run: its folder name (numbered when two runs share one)."""
    ids: dict[str, Path] = {}
    for path in paths:
        name = path.resolve().name
        key, n = name, 2
        while key in ids:
            key, n = f"{name}-{n}", n + 1
        ids[key] = path
    return ids


def best_run(runs: list[ServedRun]) -> tuple[ServedRun, str]:
    """The run the page opens on (and the API uses when no run is named), and why in words.

    Rule: the best test accuracy when any run has a test score (held-out images are the honest measure, so a run
    with one beats a run without), else the best validation accuracy, else the first run given; a tie goes to the
    run given first."""
    tested = [(r, (r.test_scores() or {}).get("accuracy")) for r in runs]
    tested = [(r, score) for r, score in tested if score is not None]
    if tested:
        run, score = max(tested, key=lambda pair: pair[1])  # max keeps the first of equal scores
        return run, f"the best test accuracy, {score:.3f}"
    validated = [(r, r.val_accuracy) for r in runs if r.val_accuracy is not None]
    if validated:
        run, score = max(validated, key=lambda pair: pair[1])
        return run, f"no run has a test score; the best validation accuracy, {score:.3f}"
    return runs[0], "no run has a score; the first given"
