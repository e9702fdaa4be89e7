"""What a label would teach, in numbers: how unsure the run is of an image (margin, entropy), how unlike the images
already labelled or chosen it is (k-centre greedy), and picks shared fairly among the predicted classes. Plain
numpy on arrays, so each rule can be checked against its definition."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cnnkit.config.suggest import QUERY_STRATEGIES

LATENT_STRATEGIES = ("kcenter", "hybrid")
SPACING = 0.5  # hybrid: the least distance between picks, as a share of the median distance to the labelled images
TYPICAL_CANDIDATES = 200  # typical picks: the images nearest a group's centre among which the densest is found
COLD_START = 10  # hybrid: under this many labelled images per class the run's uncertainty is not yet worth following


def margins(probabilities: np.ndarray, multi_label: bool = False, threshold: float | None = None,
            thresholds: Sequence[float] | None = None) -> np.ndarray:
    """How far each image is from changing the run's decision (0: on the edge). One class per image: the most
    probable class's probability minus the second's; with a two-class decision threshold ``t``, 2 |p - t| (which is
    that difference when t = 0.5). Multi-label: the smallest 2 |p - t| over the classes, each against its own
    threshold (0.5 without ``thresholds``)."""
    probabilities = np.asarray(probabilities, np.float64)
    if len(probabilities) == 0:
        return np.zeros(0)
    if multi_label:
        limits = np.full(probabilities.shape[1], 0.5) if thresholds is None else np.asarray(thresholds, np.float64)
        return 2 * np.abs(probabilities - limits).min(axis=1)
    if threshold is not None:
        return 2 * np.abs(probabilities[:, 1] - threshold)
    if probabilities.shape[1] < 2:
        return np.ones(len(probabilities))
    top = np.sort(probabilities, axis=1)
    return top[:, -1] - top[:, -2]


def entropies(probabilities: np.ndarray, multi_label: bool = False) -> np.ndarray:
    """Shannon entropy of each image's probabilities in nats (multi-label: the mean of each class's yes/no
    entropy): the larger, the more the run's belief is spread."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
    if len(p) == 0:
        return np.zeros(0)
    if multi_label:
        q = np.clip(1.0 - p, 1e-12, 1.0)
        return -(p * np.log(p) + q * np.log(q)).mean(axis=1)
    return -(p * np.log(p)).sum(axis=1)


def share(groups: Sequence[str], n: int) -> int:
    """The most picks one group may take when ``n`` are shared evenly among the groups present."""
    return max(1, math.ceil(n / max(1, len(set(groups)))))


def balanced_first(order: Sequence[int], groups: Sequence[str], n: int, balance: bool = True) -> list[int]:
    """The first ``n`` of ``order`` (indices, best first), no group (predicted class) taking more than an even share
    while another still has images; with ``balance`` False simply the first ``n``."""
    order = list(order)
    if not balance:
        return order[:n]
    cap = share([groups[i] for i in order], n)
    taken: dict[str, int] = {}
    chosen, passed = [], []
    for i in order:
        if len(chosen) == n:
            break
        if taken.get(groups[i], 0) < cap:
            chosen.append(i)
            taken[groups[i]] = taken.get(groups[i], 0) + 1
        else:
            passed.append(i)
    return chosen + passed[:n - len(chosen)]  # the others ran out: the best of the rest fill the picks


def kcenter_greedy(vectors: np.ndarray, n: int, covered: np.ndarray | None = None,
                   groups: Sequence[str] | None = None) -> tuple[list[int], np.ndarray]:
    """k-centre greedy (Sener & Savarese, 2018): again and again the image farthest (L2) from every centre so far,
    which then becomes a centre. ``covered``: each image's distance to the nearest labelled image (the labelled
    images are centres from the start); None: the pool's mean is the one centre. ``groups``: no group takes more
    than an even share while another still has images. Returns the picks in order and each one's distance when
    it was picked."""
    vectors = np.asarray(vectors, np.float64)
    n = min(n, len(vectors))
    if covered is None:
        covered = np.linalg.norm(vectors - vectors.mean(axis=0), axis=1) if len(vectors) else np.zeros(0)
    nearest = np.asarray(covered, np.float64).copy()
    squared = np.einsum("ij,ij->i", vectors, vectors)  # |a - b|^2 = |a|^2 - 2 a.b + |b|^2: no (N, D) copy per pick
    names, codes = np.unique(np.asarray(groups if groups is not None else [""] * len(vectors), str),
                             return_inverse=True)
    cap = share(list(groups), n) if groups is not None else n
    taken = np.zeros(len(names), np.int64)
    open_ = np.ones(len(vectors), bool)
    picks, distances = [], []
    for _ in range(n):
        allowed = open_ & (taken[codes] < cap)
        if not allowed.any():
            allowed = open_  # every group with images left has its share: the rest compete freely
        pick = int(np.argmax(np.where(allowed, nearest, -np.inf)))
        picks.append(pick)
        distances.append(nearest[pick])
        open_[pick] = False
        taken[codes[pick]] += 1
        to_pick = np.sqrt(np.maximum(squared - 2.0 * (vectors @ vectors[pick]) + squared[pick], 0.0))
        nearest = np.minimum(nearest, to_pick)
    return picks, np.array(distances)


def spaced_first(order: Sequence[int], vectors: np.ndarray, covered: np.ndarray, n: int, spacing: float,
                 groups: Sequence[str] | None = None) -> tuple[list[int], np.ndarray]:
    """The first ``n`` of ``order`` (indices, best first) that lie at least ``spacing`` (L2) from every labelled image
    (``covered``: each image's distance to the nearest one) and from every image picked before them: the ranking
    kept, near-copies of what is labelled or chosen passed over. ``groups``: no group takes more than an even share
    while another still has images. When too few remain, the passed-over ones fill the picks in ``order``. Returns
    the picks and each one's distance to the nearest labelled or chosen image when it was picked."""
    vectors = np.asarray(vectors, np.float64)
    order = list(order)
    n = min(n, len(order))
    squared = np.einsum("ij,ij->i", vectors, vectors)
    nearest = np.asarray(covered, np.float64).copy()
    cap = share([groups[i] for i in order], n) if groups is not None else n
    taken: dict[str, int] = {}
    picks, distances, passed = [], [], []

    def take(i: int) -> None:
        nonlocal nearest
        picks.append(i)
        distances.append(nearest[i])
        group = groups[i] if groups is not None else ""
        taken[group] = taken.get(group, 0) + 1
        nearest = np.minimum(nearest, np.sqrt(np.maximum(squared - 2.0 * (vectors @ vectors[i]) + squared[i], 0.0)))

    for i in order:
        if len(picks) == n:
            break
        crowded = groups is not None and taken.get(groups[i], 0) >= cap
        if crowded or nearest[i] < spacing:
            passed.append(i)
        else:
            take(i)
    for i in passed:  # too few images far enough apart, or the other groups ran out: the best of the rest
        if len(picks) == n:
            break
        take(i)
    return picks, np.array(distances)


def typical_first(vectors: np.ndarray, covered: np.ndarray, n: int, spacing: float,
                  seed: int = 0) -> tuple[list[int], np.ndarray]:
    """Typical images of the pool's ``n`` largest groups (k-means with ``n`` clusters, largest first; in each the
    image nearest its centre that is at least ``spacing`` from every labelled image, as ``covered`` measures): with
    a handful of labels a run's uncertainty is close to noise, and the images that stand for many others teach the
    most (Hacohen et al., 2022: "typical" picks beat uncertainty and random labelling at small budgets). Returns the
    picks and each one's distance to the nearest labelled image."""
    from sklearn.cluster import KMeans

    vectors = np.asarray(vectors, np.float64)
    k = min(n, len(vectors))
    if k == 0:
        return [], np.zeros(0)
    means = KMeans(k, n_init=3, random_state=seed).fit(vectors)
    to_centre = means.transform(vectors)[np.arange(len(vectors)), means.labels_]
    picks = []
    for cluster in np.argsort(-np.bincount(means.labels_, minlength=k), kind="stable"):
        members = np.flatnonzero(means.labels_ == cluster)
        candidates = members[np.argsort(to_centre[members], kind="stable")[:TYPICAL_CANDIDATES]]
        apart = candidates[np.asarray(covered)[candidates] >= spacing]
        picks.append(int(densest(vectors, apart, members) if len(apart) else candidates[0]))
    return picks, np.asarray(covered, np.float64)[picks]


def densest(vectors: np.ndarray, candidates: np.ndarray, members: np.ndarray, neighbours: int = 20) -> int:
    """The candidate whose ``neighbours`` nearest members are nearest on average (the typicality of Hacohen et al.):
    a group's densest point, which a few images between groups do not pull away as they pull its mean."""
    neighbours = max(1, min(neighbours, len(members) // 2))  # a small group: its own half, not its neighbours'
    x, y = vectors[candidates], vectors[members]
    squared = (x * x).sum(1)[:, None] - 2 * x @ y.T + (y * y).sum(1)[None]
    distances = np.sort(np.sqrt(np.maximum(squared, 0.0)), axis=1)[:, 1:neighbours + 1]  # itself left out
    return int(candidates[np.argmin(distances.mean(axis=1)) if distances.size else 0])


def choose(strategy: str, n: int, margin: np.ndarray, entropy: np.ndarray, groups: Sequence[str],
           balance: bool = True, vectors: np.ndarray | None = None, covered: np.ndarray | None = None,
           labelled_per_class: float | None = None) -> tuple[list[int], np.ndarray | None]:
    """The ``n`` picks of ``strategy`` (indices, best first) from each image's ``margin`` and ``entropy`` (as
    ``margins`` and ``entropies`` give them) and predicted class (``groups``, shared fairly with ``balance``); the
    latent strategies also take the ``vectors`` and each one's distance to the nearest labelled image (``covered``;
    None: the pool's mean is the one covered point) and return each pick's distance when it was picked. Hybrid with
    fewer than ``COLD_START`` labelled images per class (``labelled_per_class``; None: not known, taken as enough)
    picks typical images (``typical_first``) instead of following the run's uncertainty."""
    if strategy == "margin":
        return balanced_first(np.argsort(margin, kind="stable"), groups, n, balance), None
    if strategy == "entropy":
        return balanced_first(np.argsort(-np.asarray(entropy), kind="stable"), groups, n, balance), None
    if strategy not in LATENT_STRATEGIES:
        raise ValueError(f"{strategy!r} is not a strategy; expected one of {', '.join(QUERY_STRATEGIES)}")
    if not len(margin):
        return [], np.zeros(0)
    vectors = np.asarray(vectors, np.float64)
    if covered is None:  # no labelled image to measure from: the pool's mean is the one covered point
        covered = np.linalg.norm(vectors - vectors.mean(axis=0), axis=1)
    by_class = groups if balance else None
    if strategy == "kcenter":
        return kcenter_greedy(vectors, n, covered, by_class)
    # hybrid: margin's ranking, passing over an image nearer than half the typical distance between a pool image and
    # its nearest labelled one to a labelled or already chosen image (near-copies teach what one of them does)
    spacing = SPACING * float(np.median(covered))
    if labelled_per_class is not None and labelled_per_class < COLD_START:
        return typical_first(vectors, covered, n, spacing)
    return spaced_first(np.argsort(margin, kind="stable"), vectors, covered, n, spacing, by_class)
