"""Self-training on cached features (``unlabelled``): the solved head labels a pool of images nobody labelled, its
confident pseudo-labels join the labelled images, and the head is solved again, for a few rounds.

Every choice is made on the labelled train+val images, with the folds that chose the head's penalty C: the candidate
confidence thresholds are the lowest at which the plain head's held-out predictions were right 95%, 90% or 80% of
the time; each fold's head pseudo-labels the pool on its own; the threshold and the number of rounds (0: the plain
head) are those with the most held-out labelled images classified right, and the pool is kept only when that beats
the plain head (ties: the plain head, as fine-tuning falls back to it). The test split is never seen: its images,
like every labelled one, are left out of the pool (``data.pool``). Pseudo-labels are class-balanced: each class
gets its most confident above the threshold, as many as the rarest class has there, so a class that the pool's
images fall into cannot swamp the others; and since one rare class would then stop every other, a top-k per class
too: round r takes up to 2^(r-1) times the rarest class's labelled count from each class that has them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.data.pool import PoolManifest, scan_pool
from cnnkit.data.prepare import ImageArrays, decode_images
from cnnkit.data.preprocess import Preprocessing
from cnnkit.feature_cache import cached_features
from cnnkit.models.linear_head import fit_softmax, log_loss
from cnnkit.progress import Progress
from cnnkit.run.results import PseudoLabelRound, SelfTraining
from cnnkit.training.loaders import Mirrored

log = logging.getLogger("cnnkit")

ROUNDS = 3
PRECISIONS = (0.95, 0.9, 0.8)  # each gives a threshold: the plain head's held-out predictions above it were right
# at least this often; cross-validation chooses among them
MIN_SUPPORT = 10  # ... over at least this many of them (or all labelled images, when fewer)
CHUNK = 256  # pool images decoded at a time: the pool's memory is one chunk of pixels and its features


def pool_features(model, folder: str | Path, splits: dict[str, ImageArrays], preprocessing: Preprocessing,
                  mirror: bool, progress: bool = True, write: bool = True) -> tuple[np.ndarray, PoolManifest]:
    """The pool's pooled backbone features (N, F), cached like the labelled images' (averaged with the mirror
    images' when ``mirror``), and its manifest: copies of any labelled image (``splits``, test included) and
    unreadable files left out."""
    labelled = [Path(s.root) / p for s in splits.values() if s.root is not None for p in s.paths]
    manifest = scan_pool(folder, labelled)
    paths, out, unreadable = manifest.paths(), [], []
    bar = Progress(len(paths), "Pool features (cached for later runs)", enabled=progress)
    for start in range(0, len(paths), CHUNK):
        chunk = paths[start:start + CHUNK]
        images, decoded = decode_images(chunk, preprocessing, skip_bad=True)
        unreadable += [p.relative_to(manifest.root).as_posix() for p, ok in zip(chunk, decoded) if not ok]
        if len(images):
            features = cached_features(model, images, preprocessing, progress=False, write=write)[0][:, 0].numpy()
            if mirror:
                features = (features + cached_features(model, Mirrored(images), preprocessing, progress=False,
                                                       write=write)[0][:, 0].numpy()) / 2
            out.append(features)
        bar.update(len(chunk))
    bar.close()
    manifest = manifest.without(unreadable) if unreadable else manifest
    if not out:
        from cnnkit.errors import DataError

        raise DataError(f"`unlabelled`: no image in the pool folder {folder} could be decoded.")
    return np.concatenate(out), manifest


def confidence_threshold(probabilities: np.ndarray, labels: np.ndarray, precision: float,
                         support: int = MIN_SUPPORT) -> float | None:
    """The lowest confidence (highest class probability) at which predictions at least as confident were right at
    least ``precision`` of the time, over at least ``support`` predictions; None when there is none."""
    confidence = probabilities.max(1)
    order = np.argsort(-confidence, kind="stable")
    right = (probabilities.argmax(1) == labels)[order]
    seen = np.arange(1, len(order) + 1)
    ok = (np.cumsum(right) >= precision * seen) & (seen >= min(support, len(order)))
    ok &= np.append(confidence[order][1:] < confidence[order][:-1], True)  # whole ties only
    return float(confidence[order][np.flatnonzero(ok)[-1]]) if ok.any() else None


def pseudo_labels(probabilities: np.ndarray, threshold: float, at_least: int) -> tuple[np.ndarray, np.ndarray]:
    """The pool images that join training and their labels: for each class, the most confident of those predicted
    as it at or above ``threshold``, as many as the rarest class has there, or ``at_least`` when that is more (a
    class with fewer gives what it has)."""
    confidence, predicted = probabilities.max(1), probabilities.argmax(1)
    above = [np.flatnonzero((predicted == c) & (confidence >= threshold)) for c in range(probabilities.shape[1])]
    per_class = max(at_least, min(len(a) for a in above))
    chosen = [a[np.argsort(-confidence[a], kind="stable")[:per_class]] for a in above]
    index = np.sort(np.concatenate(chosen)).astype(int)
    return index, predicted[index]


@dataclass(frozen=True)
class SelfTrained:
    """What self-training gives the head: the features and labels to fit (the labelled ones, followed by the
    pool's pseudo-labelled ones when they are kept), the record, and the pool's manifest with its pseudo-labels
    (of the kept round, else of the last round tried)."""

    x: np.ndarray
    y: np.ndarray
    record: SelfTraining
    manifest: PoolManifest


def _same(a: tuple, b: tuple) -> bool:
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def _with(x, y, pool, picked):
    return np.concatenate([x, pool[picked[0]]]), np.concatenate([y, picked[1]])


def _self_training(fit, x, y, pool, threshold, num_classes, C, class_weights, rounds, each) -> None:
    """``rounds`` of pseudo-labelling from the head ``fit`` (of x, y), round r taking per class at least 2^(r-1)
    times the rarest class's labelled count where there are as many; ``each(round, fit, picked)`` after every
    round, 0 included. A round that picks what the last one did gives the same head, so it is not fitted again."""
    picked, fewest = None, int(np.bincount(y, minlength=num_classes).min())
    each(0, fit, None)
    for r in range(1, rounds + 1):
        new = pseudo_labels(fit.probabilities(pool), threshold, max(1, fewest) * 2 ** (r - 1))
        if picked is None or not _same(new, picked):
            picked = new
            fit = fit_softmax(*_with(x, y, pool, picked), num_classes, C, class_weights, tol=1e-4)[0]
        each(r, fit, picked)


def _cross_validated(x, y, pool, num_classes, C, splits, class_weights, rounds):
    """For each threshold (one per precision of ``PRECISIONS`` the plain heads' held-out predictions reach) and
    round: the labelled images classified right, and the summed log loss, by the heads of the folds that did not
    see them; each fold's head pseudo-labels the pool on its own."""
    fits = [fit_softmax(x[t], y[t], num_classes, C, class_weights, tol=1e-4)[0] for t, _ in splits]
    held_out = np.zeros((len(y), num_classes))
    for fit, (_, held) in zip(fits, splits):
        held_out[held] = fit.probabilities(x[held])
    thresholds = sorted({t for t in (confidence_threshold(held_out, y, p) for p in PRECISIONS) if t is not None},
                        reverse=True)
    correct, loss = np.zeros((max(1, len(thresholds)), rounds + 1)), np.zeros((max(1, len(thresholds)), rounds + 1))
    for i, threshold in enumerate(thresholds or [None]):
        for fit, (train, held) in zip(fits, splits):
            def score(r, head, _, i=i, held=held):
                correct[i, r] += int((head.probabilities(x[held]).argmax(1) == y[held]).sum())
                loss[i, r] += log_loss(head, x[held], y[held], class_weights) * len(held)

            _self_training(fit, x[train], y[train], pool, threshold, num_classes, C, class_weights,
                           rounds if threshold is not None else 0, score)
    return thresholds, correct, loss


def self_train(x: np.ndarray, y: np.ndarray, pool: np.ndarray, manifest: PoolManifest, classes: list[str], C: float,
               folds: int, seed: int = 0, class_weights: list[float] | None = None,
               rounds: int = ROUNDS) -> SelfTrained:
    """The labelled features and labels the head is fitted on (with the pool's pseudo-labels when they are kept)
    and the record of every round. ``folds`` and ``seed``: those of the cross-validation that chose ``C``.
    Kept: the threshold and number of rounds with the most held-out labelled images right, only when that is more
    than the plain head's (ties: fewer rounds, then the stricter threshold)."""
    from sklearn.model_selection import StratifiedKFold

    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y))
    thresholds, correct, loss = _cross_validated(x, y, pool, len(classes), C, splits, class_weights, rounds)
    best_round, best = divmod(int(np.argmax(correct.T)), len(correct))  # the first: fewer rounds, stricter
    kept = bool(correct[best, best_round] > correct[0, 0])
    shown = best if kept else int(np.argmax(correct[:, 1:].max(1))) if thresholds else 0
    chosen, per_round, last = (x, y), [], (np.zeros(0, int), np.zeros(0, int))

    def final(r, _, picked):
        nonlocal chosen, last
        if r:
            per_round.append(np.bincount(picked[1], minlength=len(classes)))
        if r and (not kept or r == best_round):
            chosen, last = _with(x, y, pool, picked) if kept else (x, y), picked

    if thresholds:
        head = fit_softmax(x, y, len(classes), C, class_weights, tol=1e-4)[0]
        _self_training(head, x, y, pool, thresholds[shown], len(classes), C, class_weights, rounds, final)
    record = SelfTraining(
        pool=manifest.root, images=len(manifest.images), threshold=thresholds[shown] if thresholds else None,
        kept=kept, kept_rounds=best_round if kept else 0, left_out=len(manifest.left_out),
        thresholds_tried=tuple(thresholds), reason=_reason(correct, thresholds, best, best_round, kept, len(y)),
        rounds=tuple(PseudoLabelRound(r, {c: int(n) for c, n in zip(classes, ([0] * len(classes), *per_round)[r])},
                                      float(correct[shown, r] / len(y)), float(loss[shown, r] / len(y)))
                     for r in range(len(per_round) + 1)))
    return SelfTrained(*chosen, record, manifest.labelled(list(last[0]), [classes[c] for c in last[1]]))


def _reason(correct: np.ndarray, thresholds: list[float], best: int, best_round: int, kept: bool, n: int) -> str:
    plain = correct[0, 0] / n
    if not thresholds:
        return (f"not kept: the head's held-out predictions were never right {min(PRECISIONS):.0%} of the time at any "
                "confidence, so no pseudo-label could be trusted")
    if kept:
        return (f"kept: validation {plain:.4f} -> {correct[best, best_round] / n:.4f} with {best_round} "
                f"round{'s' if best_round > 1 else ''} at confidence {thresholds[best]:.3f}")
    return f"not kept: no better on validation ({plain:.4f} without the pool, {correct[:, 1:].max() / n:.4f} with it)"
