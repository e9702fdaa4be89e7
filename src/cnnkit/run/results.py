"""The typed parts of a run's record that used to be dictionaries: the head solver's result, thresholds chosen per
class (a multi-label run's, a scan's), and ``--auto``'s leaderboard. Each reads and writes the JSON it always had,
so older run folders load unchanged."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


def _known(cls, data: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class GridPoint:
    """One penalty of the solver's search: its cross-validated accuracy and loss."""

    C: float
    cv_acc: float | None = None
    cv_loss: float | None = None
    folds: int | None = None


@dataclass(frozen=True)
class PseudoLabelRound:
    """One round of self-training: the pool images that joined the labelled ones, per class, above the confidence
    threshold, and the out-of-fold validation scores with them."""

    round: int
    per_class: dict[str, int]
    val_accuracy: float
    val_loss: float | None = None

    @property
    def pseudo_labels(self) -> int:
        return sum(self.per_class.values())


@dataclass(frozen=True)
class SelfTraining:
    """A pool of unlabelled images used by the solved head (``unlabelled``): its size, the confidence thresholds tried
    (from held-out labelled images), the rounds at the kept threshold (not kept: the best one), and whether the
    result was kept and why. Round 0 is the plain head."""

    pool: str
    images: int
    threshold: float | None
    rounds: tuple[PseudoLabelRound, ...]
    kept: bool
    kept_rounds: int
    reason: str
    left_out: int = 0
    thresholds_tried: tuple[float, ...] = ()
    manifest: str = "pool.json"
    chosen_by: str = ("out-of-fold predictions on the labelled train+val images, the folds that chose C; the test split "
                      "is not used")

    @property
    def pseudo_labels(self) -> int:
        """The pseudo-labels the kept head learned from (0 when the plain head was kept)."""
        return self.rounds[self.kept_rounds].pseudo_labels if self.kept else 0

    @classmethod
    def from_dict(cls, data: dict | SelfTraining | None) -> SelfTraining | None:
        if data is None or isinstance(data, SelfTraining):
            return data
        values = _known(cls, data)
        values["rounds"] = tuple(PseudoLabelRound(**_known(PseudoLabelRound, r)) for r in data.get("rounds") or ())
        values["thresholds_tried"] = tuple(data.get("thresholds_tried") or ())
        return cls(**values)


@dataclass(frozen=True)
class SolverResult:
    """A head fitted to the optimum (L-BFGS): the penalty chosen by cross-validation and every penalty tried."""

    C: float
    fitted_on: str  # "train+val", or "train" when fine-tuning follows
    grid: tuple[GridPoint, ...] = ()
    method: str = "lbfgs"
    iterations: int | None = None
    converged: bool = True
    chosen_by: str = "cross-validation on train+val"
    flip_average: bool = False  # features averaged with the mirror image's (better by cross-validation)
    mirror_helps: bool | None = None
    self_training: SelfTraining | None = None  # `unlabelled`: the pool's pseudo-labels, round by round

    @classmethod
    def from_dict(cls, data: dict | SolverResult | None) -> SolverResult | None:
        if data is None or isinstance(data, SolverResult):
            return data
        values = _known(cls, data)
        values["grid"] = tuple(GridPoint(**_known(GridPoint, {"C": math.nan, **g})) for g in data.get("grid") or ())
        values["self_training"] = SelfTraining.from_dict(data.get("self_training"))
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Thresholds:
    """A threshold per class and how they were chosen; a scan's also carry each class's least distance between
    detections, as a factor of the default."""

    per_class: dict[str, float]
    source: str | None = None
    distance_factors: dict[str, float] | None = None

    @classmethod
    def from_dict(cls, data: dict | Thresholds | None) -> Thresholds | None:
        if data is None or isinstance(data, Thresholds):
            return data
        return cls(**_known(cls, data))

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Candidate:
    """One recipe ``--auto`` tried: its status (kept, ranked, skipped, failed), scores, time and why."""

    name: str
    status: str
    folder: str | None = None
    validated_by: str | None = None
    note: str | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class Recipe:
    """``--auto``'s leaderboard: the budget, the time it took, the backbones, every candidate, the kept one."""

    budget_seconds: float
    seconds: float
    kept: str
    candidates: tuple[Candidate, ...] = ()
    backbones: tuple[str, ...] = ()
    ranked_by: str = ("validation accuracy, then validation loss, then the order tried; the test split is not used")

    def ranked(self) -> list[Candidate]:
        """The candidates as a person reads them: the kept one first, then by validation accuracy."""
        return sorted(self.candidates, key=lambda c: (c.status != "kept", -(c.val_accuracy or -1)))

    @classmethod
    def from_dict(cls, data: dict | Recipe | None) -> Recipe | None:
        if data is None or isinstance(data, Recipe):
            return data
        values = _known(cls, data)
        values["candidates"] = tuple(Candidate(**_known(Candidate, c)) for c in data.get("candidates") or ())
        values["backbones"] = tuple(data.get("backbones") or ())
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

