"""Which unlabelled images to label next (``cnnkit suggest``): the pool read through a trained run, ranked by what a
label would teach (uncertainty, diversity in the latent space, class balance), written for a person to label."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.config import SuggestConfig
from cnnkit.errors import ConfigError
from cnnkit.inference import Predictor
from cnnkit.options import with_options
from cnnkit.run import RunFolder
from cnnkit.run.tasks import require
from cnnkit.suggest.choose import LATENT_STRATEGIES, choose, entropies, margins
from cnnkit.suggest.page import check_out, write_suggestions
from cnnkit.suggest.pool import Pool, labelled_distances, read_pool


@dataclass(frozen=True)
class Suggestion:
    """One image to label: its place in the ranking, its path relative to the pool folder, what the run makes of it
    and why it was chosen."""

    rank: int
    path: str
    predicted: str  # the run's decision ("a|b" for a multi-label run, "" for none of its classes)
    probability: float  # of ``predicted`` (multi-label: the highest class probability)
    margin: float  # 0: on the edge of the decision (see ``choose.margins``)
    entropy: float
    distance: float | None  # latent distance to the nearest labelled or already chosen image when picked
    reason: str


@dataclass
class Suggestions:
    """The ranking and how the pool was read."""

    rows: list[Suggestion]
    pool: Path
    strategy: str
    ranked: int  # images that could be suggested
    files: int
    unreadable: tuple[str, ...]
    labelled: int
    copies: int
    out: Path | None = None

    def summary(self) -> str:
        left = [f"{self.labelled} already labelled (the run's own images)" if self.labelled else "",
                f"{self.copies} copies of other pool images" if self.copies else "",
                f"{len(self.unreadable)} unreadable" if self.unreadable else ""]
        left = [x for x in left if x]
        text = (f"Suggested {len(self.rows)} of {self.ranked} images of {self.pool} ({self.strategy})"
                + (f"; left out: {', '.join(left)}" if left else ""))
        return text + (f". Wrote {self.out / 'to_label.csv'} and {self.out / 'index.html'}" if self.out else "")


@with_options(SuggestConfig)
def suggest(run_dir: str | Path, pool: str | Path, out: str | Path | None = None,
            config: SuggestConfig | None = None) -> Suggestions:
    """Rank the images under ``pool`` (a folder, searched recursively; no labels needed) by what labelling them would
    teach the classification run ``run_dir``, and return the best ``n`` (see ``SuggestConfig`` for the strategies).
    The run's own labelled images, by path or by pixels, and copies within the pool are left out. With ``out``, the
    folder gets ``to_label.csv`` (paths relative to ``pool``), ``index.html`` and ``thumbs/``, written as a whole."""
    config = config or SuggestConfig()
    run = RunFolder(run_dir)
    require(run.read_record().kind, "suggest", run.path)
    if out is not None:
        check_out(Path(out))
    predictor = Predictor.load(run.path, backend="torch")
    embed = config.query_strategy in LATENT_STRATEGIES
    if embed and not predictor.has_latent_space:
        raise ConfigError(f"`query_strategy` {config.query_strategy} measures distances in the latent space, which "
                          f"{run.path} (a {type(predictor).__name__}) does not have; use margin or entropy.")
    found = read_pool(run, predictor, pool, embed, config.skip_bad, None if out is None else Path(out))
    rows = _rows(found, predictor, *_choose(found, run, predictor, config))
    result = Suggestions(rows, Path(pool), config.query_strategy, len(found.paths), found.files, found.unreadable,
                         found.labelled, found.copies)
    if out is not None:
        result.out = write_suggestions(Path(out), result, found.root)
    return result


def _choose(found: Pool, run: RunFolder, predictor: Predictor, config: SuggestConfig
            ) -> tuple[list[int], np.ndarray | None]:
    """The picks (indices into the pool, best first) and, for the latent strategies, each one's distance."""
    probabilities = found.probabilities
    uncertain = margins(probabilities, predictor.multi_label, predictor.threshold, predictor.thresholds)
    spread = entropies(probabilities, predictor.multi_label)
    groups = [label for label, _ in predictor.labelled(probabilities)]
    latent = config.query_strategy in LATENT_STRATEGIES and len(probabilities)
    covered = labelled_distances(run, predictor, found.vectors) if latent else None
    record = run.read_record()
    labelled = sum(sum(record.data.counts.get(split, {}).values()) for split in ("train", "val"))
    return choose(config.query_strategy, config.n, uncertain, spread, groups, config.class_balance, found.vectors,
                  covered, labelled / max(1, len(record.classes)))


def _rows(found: Pool, predictor: Predictor, picks: list[int], distances: np.ndarray | None) -> list[Suggestion]:
    probabilities = found.probabilities[picks]
    uncertain = margins(probabilities, predictor.multi_label, predictor.threshold, predictor.thresholds)
    spread = entropies(probabilities, predictor.multi_label)
    rows = []
    for rank, (i, row, (label, probability)) in enumerate(zip(picks, probabilities,
                                                              predictor.labelled(probabilities)), 1):
        distance = None if distances is None else float(distances[rank - 1])
        reason = _doubt(row, predictor)
        if distance is not None:
            reason += f"; latent distance {distance:.3g} to the nearest labelled or chosen image"
        rows.append(Suggestion(rank, _relative(found.paths[i], found.root), label, probability,
                               float(uncertain[rank - 1]), float(spread[rank - 1]), distance, reason))
    return rows


def _doubt(probabilities: np.ndarray, predictor: Predictor) -> str:
    """Why the run is unsure, in words: the classes it hesitates between."""
    classes = predictor.classes
    if predictor.multi_label:
        limits = predictor.thresholds or [0.5] * len(classes)
        k = int(np.argmin(np.abs(probabilities - np.asarray(limits))))
        return f"{classes[k]} {probabilities[k]:.2f} against its threshold {limits[k]:.2f}"
    if len(classes) < 2:
        return f"{classes[0]} {probabilities[0]:.2f}"
    if predictor.threshold is not None:
        return f"{classes[1]} {probabilities[1]:.2f} against the decision threshold {predictor.threshold:.2f}"
    first, second = np.argsort(-probabilities, kind="stable")[:2]
    entropy = float(entropies(probabilities[None])[0])
    return (f"{classes[first]} {probabilities[first]:.2f} or {classes[second]} {probabilities[second]:.2f}; "
            f"entropy {entropy:.2f} of at most {math.log(len(classes)):.2f}")


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
