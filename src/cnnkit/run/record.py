"""The run record: what a run folder's ``config.json`` says, as typed, frozen dataclasses.

Version 2 adds ``record_version`` and stores a baseline's settings under ``baseline``; version 1 (cnnkit 0.1.0,
commit f7c7ce8) loads unchanged. ``RunFolder`` (``run/folder.py``) is the one reader and writer of the file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cnnkit._version import __version__
from cnnkit.config import BaselineConfig, PointsConfig, TrainConfig
from cnnkit.data.preprocess import Preprocessing
from cnnkit.errors import RunError
from cnnkit.run.results import Recipe, SolverResult, Thresholds
from cnnkit.run.tasks import RunKind, kind_named, require

RECORD_VERSION = 2
STATUSES = ("training", "finished", "interrupted", "failed")  # "training" with no live writer: killed
TASKS = ("classify", "reconstruct", "points")


def _build(cls, data: dict | None):
    """``cls`` from a JSON object, ignoring keys it does not know (a newer writer's)."""
    if data is None:
        return None
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class ModelSpec:
    """The network (or baseline) to build: name, options, classes and input channels."""

    name: str
    num_classes: int
    in_channels: int
    options: dict[str, Any] = field(default_factory=dict)  # the builder's keyword arguments
    init: str = "default"
    kind: str = "network"  # or "baseline"
    method: str | None = None  # baseline: knn, linear, handcrafted
    params: dict[str, Any] = field(default_factory=dict)  # baseline: the fitted classifier's numbers

    @property
    def is_baseline(self) -> bool:
        return self.kind == "baseline"


@dataclass(frozen=True)
class DataRecord:
    """Where the images came from and how many each split and class holds."""

    root: str
    layout: str
    counts: dict[str, dict[str, int]]
    skipped: tuple[str, ...] = ()
    dropped: dict[str, str] | None = None  # dedupe: each file left out, and why
    conflicting: tuple[tuple[str, ...], ...] = ()  # copies of one image labelled differently (paths)


@dataclass(frozen=True)
class BalanceRecord:
    mode: str = "none"
    class_weights: dict[str, float] | None = None
    draws_per_class_per_epoch: dict[str, float] | None = None


@dataclass(frozen=True)
class FeatureCacheRecord:
    used: bool
    reason: str | None = None
    views: int | None = None
    directory: str | None = None
    reused: int = 0
    computed: int = 0


@dataclass(frozen=True)
class PhaseRecord:
    name: str
    epochs_run: int
    trainable_params: int
    backbone_lr: float | None = None
    solver: SolverResult | None = None  # a head fitted to the optimum: the chosen C, the scores of every C
    augment: str | None = None  # the phase's random transforms (fine-tuning's default when none was asked for)
    precision: str | None = None  # "bf16" autocast or "32"; channels_last memory format with a trainable backbone
    fallback: bool = False  # fine-tuning lost to the solved head on validation: the head, re-solved on train+val

    @classmethod
    def from_dict(cls, data: dict | PhaseRecord) -> PhaseRecord:
        if isinstance(data, PhaseRecord):
            return data
        phase = _build(cls, data)
        return replace(phase, solver=SolverResult.from_dict(phase.solver),
                       fallback=phase.fallback or phase.name == "head (fallback)")  # records before the field


@dataclass(frozen=True)
class TrainingResult:
    """What training achieved: the kept (best) epoch, its validation scores, epochs and time."""

    best_epoch: int | None
    best_val_loss: float | None = None
    best_val_acc: float | None = None
    epochs_run: int = 0
    train_seconds: float = 0.0
    epoch_seconds: tuple[float, ...] = ()
    phases: tuple[PhaseRecord, ...] = ()

    @classmethod
    def from_dict(cls, data: dict | None) -> TrainingResult | None:
        if data is None:
            return None
        result = _build(cls, data)
        return replace(result, epoch_seconds=tuple(result.epoch_seconds),
                       phases=tuple(PhaseRecord.from_dict(p) for p in result.phases))


@dataclass(frozen=True)
class Decision:
    """A two-class decision threshold: the positive class when its probability is at least ``threshold``."""

    threshold: float
    positive_class: str
    source: str


@dataclass(frozen=True)
class ReconstructionRecord:
    """An autoencoder run after training: the code it squeezes each image into, its reconstruction error on the
    validation split, and the anomaly thresholds chosen on that split alone (never on the test split)."""

    code_size: int  # numbers per image in the code
    pixels: int  # numbers per image in the input (height x width x channels)
    val_error: float  # mean over validation images of the per-image mean squared error (pixels in [0, 1])
    image_threshold: float  # an image is anomalous when its error is above this
    pixel_threshold: float  # a pixel of the smoothed error map is unusual above this
    quantile: float  # both thresholds are this quantile of the validation split's errors
    smoothing: float  # the error map's Gaussian smoothing (sigma, pixels)
    val_images: int
    source: str = "the validation split"

    @property
    def compression(self) -> float:
        return self.pixels / self.code_size


@dataclass(frozen=True)
class TaughtPhoto:
    """A photo a point detector learned from: its file, its dots file and how many of its dots taught (in region)."""

    photo: str
    dots: str
    objects: int


@dataclass(frozen=True)
class TaughtPatches:
    """A patch folder a point detector also learned from: its object and background patches."""

    folder: str
    objects: int
    backgrounds: int


@dataclass(frozen=True)
class PointsRecord:
    """A point detector's run: its settings, what it learned from, and the centre map's cell (pixels)."""

    settings: PointsConfig
    photos: tuple[TaughtPhoto, ...]
    patches: tuple[TaughtPatches, ...] = ()  # one per folder of `patches`
    cell: int = 8

    def to_dict(self) -> dict:
        return {"settings": self.settings.to_dict(), "photos": [asdict(p) for p in self.photos],
                "patches": [asdict(p) for p in self.patches], "cell": self.cell}

    @classmethod
    def from_dict(cls, data: dict | None) -> PointsRecord | None:
        if data is None:
            return None
        return cls(PointsConfig.from_dict(data["settings"]), tuple(_build(TaughtPhoto, p) for p in data["photos"]),
                   _taught_patches(data.get("patches")), int(data.get("cell", 8)))


def _taught_patches(data: list | dict | None) -> tuple[TaughtPatches, ...]:
    """The patch folders of a record (one object, or none, when written before several were taken)."""
    items = [] if data is None else [data] if isinstance(data, dict) else data
    return tuple(_build(TaughtPatches, p) for p in items)


@dataclass(frozen=True)
class CrossValidation:
    folds: int
    best: dict[str, float | int | str | None]  # the chosen hyper-parameters of the search
    cv_accuracy: float
    candidates: int
    samples: int


@dataclass(frozen=True)
class RunRecord:
    """Everything a run folder's ``config.json`` holds."""

    model: ModelSpec
    classes: tuple[str, ...]
    preprocessing: Preprocessing
    data: DataRecord | None = None
    training: TrainConfig | None = None  # a network run's settings
    baseline: BaselineConfig | None = None  # a baseline run's settings
    cross_validation: CrossValidation | None = None
    status: str = "training"
    status_reason: str | None = None  # why an interrupted or failed run stopped
    balance: BalanceRecord = field(default_factory=BalanceRecord)
    pretrained_source: str | None = None
    feature_cache: FeatureCacheRecord | None = None
    result: TrainingResult | None = None
    decision: Decision | None = None
    recipe: Recipe | None = None  # --auto: the budget, every candidate's validation scores, the kept one
    scan_thresholds: Thresholds | None = None  # scan: per class, with least distances, chosen on a dotted photo
    multi_label: bool = False  # any number of the classes per image: sigmoid outputs, binary cross-entropy
    label_thresholds: Thresholds | None = None  # multi-label: per class, chosen on the validation split
    task: str = "classify"  # or "reconstruct": an autoencoder, trained without labels
    reconstruction: ReconstructionRecord | None = None  # an autoencoder's code size, error and anomaly thresholds
    points: PointsRecord | None = None  # a point detector's settings and training photos (task "points")
    cnnkit_version: str = __version__
    record_version: int = RECORD_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))

    def replace(self, **changes: Any) -> RunRecord:
        return replace(self, **changes)

    @property
    def augment(self) -> str | None:
        """The training augmentation spec: what test-time augmentation may draw on."""
        return self.training.augment if self.training else None

    def build_network(self):
        """The network this record describes, with fresh weights (``cnnkit.models.Network``)."""
        from cnnkit.models import create_model

        require(self.kind, "network", "This run")
        spec = self.model
        try:
            return create_model(spec.name, len(self.classes), self.preprocessing.channels,
                                self.preprocessing.image_size, **spec.options)
        except TypeError as e:
            raise RunError(f"The model entry of the run's record is broken: {e}.") from None

    @property
    def thresholds(self) -> list[float] | None:
        """A multi-label run's decision threshold per class, in class order (None: 0.5 for every class)."""
        per_class = self.label_thresholds.per_class if self.label_thresholds else None
        return [float(per_class.get(c, 0.5)) for c in self.classes] if per_class else None

    @property
    def reconstructs(self) -> bool:
        """An autoencoder's run: no classes to predict; ``cnnkit anomaly`` scores its reconstruction error."""
        return self.task == "reconstruct"

    @property
    def finds_points(self) -> bool:
        """A point detector's run: no image classes; ``cnnkit scan`` finds object centres in photographs."""
        return self.task == "points"

    @property
    def names_objects(self) -> bool:
        """A point detector that also names each object's class (``by_class``): its classes are the objects'."""
        return self.finds_points and self.points.settings.by_class

    @property
    def kind(self) -> RunKind:
        """The run's kind in the table of kinds (``run.tasks``): what it supports, and its refusals."""
        return kind_named(self.task, self.multi_label)

    def build_point_network(self):
        """A point detector's network (``cnnkit.models.points.PointNet``), with fresh weights."""
        from cnnkit.models.points import PointNet

        return PointNet(self.points.settings.backbone, classes=len(self.classes) if self.names_objects else 0)

    @property
    def strategy(self) -> str:
        if self.finds_points:
            return "points"
        return self.training.strategy if self.training else "baseline"

    def to_dict(self) -> dict:
        """The JSON form (the keys of version 1, plus ``record_version`` and ``baseline``)."""
        out = {"record_version": self.record_version, "cnnkit_version": self.cnnkit_version, "status": self.status,
               "status_reason": self.status_reason,
               "model": asdict(self.model), "classes": list(self.classes),
               "preprocessing": self.preprocessing.to_dict(),
               "training": self.training.to_dict() if self.training else None,
               "baseline": self.baseline.to_dict() if self.baseline else None,
               "cross_validation": asdict(self.cross_validation) if self.cross_validation else None,
               "balance": asdict(self.balance), "data": asdict(self.data) if self.data else None,
               "split": "split.json",
               "pretrained": {"source": self.pretrained_source} if self.pretrained_source else None,
               "feature_cache": asdict(self.feature_cache) if self.feature_cache else None,
               "result": asdict(self.result) if self.result else None,
               "decision": asdict(self.decision) if self.decision else None, "recipe": self.recipe.to_dict() if self.recipe else None,
               "scan_thresholds": self.scan_thresholds.to_dict() if self.scan_thresholds else None,
               "multi_label": self.multi_label or None,
               "label_thresholds": self.label_thresholds.to_dict() if self.label_thresholds else None,
               "task": self.task,
               "reconstruction": asdict(self.reconstruction) if self.reconstruction else None,
               "points": self.points.to_dict() if self.points else None}
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        """Read version 1 or 2; raises KeyError, TypeError or ValueError on a broken record (the caller names the
        file)."""
        training, baseline, cross_validation = _settings(data)
        data_record = _build(DataRecord, data.get("data"))
        if data_record is not None:
            data_record = replace(data_record, skipped=tuple(data_record.skipped),
                                  conflicting=tuple(tuple(g) for g in data_record.conflicting))
        classes = _class_names(data["classes"])
        model = {"num_classes": len(classes), "in_channels": data["preprocessing"]["channels"], **data["model"]}
        return cls(
            model=_build(ModelSpec, model), classes=classes,
            preprocessing=Preprocessing.from_dict(data["preprocessing"]), data=data_record,
            training=training, baseline=baseline, cross_validation=cross_validation,
            status=data.get("status", "finished"), status_reason=data.get("status_reason"),
            balance=_build(BalanceRecord, data.get("balance") or {}),
            pretrained_source=(data.get("pretrained") or {}).get("source"),
            feature_cache=_build(FeatureCacheRecord, data.get("feature_cache")),
            result=TrainingResult.from_dict(data.get("result")), decision=_build(Decision, data.get("decision")),
            recipe=Recipe.from_dict(data.get("recipe")), scan_thresholds=Thresholds.from_dict(data.get("scan_thresholds")),
            multi_label=bool(data.get("multi_label", False)),
            label_thresholds=Thresholds.from_dict(data.get("label_thresholds")),
            task=data.get("task", "classify"), reconstruction=_build(ReconstructionRecord, data.get("reconstruction")),
            points=PointsRecord.from_dict(data.get("points")),
            cnnkit_version=data.get("cnnkit_version", "0.1.0"),
            record_version=int(data.get("record_version", 1)),
        )._checked()

    def _checked(self) -> RunRecord:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")
        if self.task not in TASKS:
            raise ValueError(f"task {self.task!r} is not one of {TASKS}")
        fewest = 2 if self.task == "classify" else 1  # an autoencoder ignores labels; a point detector has one
        if self.finds_points and self.points is None:
            raise ValueError("a point detector's run without its `points` entry")
        if len(self.classes) < fewest or self.model.num_classes != len(self.classes):
            raise ValueError(f"{len(self.classes)} classes for a model of {self.model.num_classes}")
        return self


@dataclass(frozen=True)
class TrainedRun:
    """What training (a network or a baseline) returns: the run folder and its final record."""

    run_dir: Path
    record: RunRecord

    @property
    def result(self) -> TrainingResult:
        return self.record.result


def _class_names(value) -> tuple[str, ...]:
    """The record's classes: a list of distinct, non-empty names ("ABC" is no list of three classes)."""
    if not isinstance(value, list) or not all(isinstance(name, str) and name for name in value):
        raise ValueError(f"classes must be a list of class names; found {type(value).__name__} {str(value)[:60]!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"classes names a class twice: {value[:20]}")
    return tuple(value)


def _settings(data: dict):
    """(training, baseline, cross-validation) of a version 1 or 2 record (a probe: a network with baseline settings)."""
    cv = data.get("cross_validation")
    if data.get("baseline") or data.get("model", {}).get("kind") == "baseline":
        settings = data.get("baseline") or data.get("training") or {}  # version 1 kept them under "training"
        cv = cv or settings.get("cross_validation")
        return None, BaselineConfig.from_dict(settings), _build(CrossValidation, cv)
    return TrainConfig.from_dict(data["training"]) if data.get("training") else None, None, None
