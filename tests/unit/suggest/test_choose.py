"""The rules of choice against their definitions: margin and entropy as written in the textbooks, k-centre greedy
against a brute-force reading of it, and the even share of picks among predicted classes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from cnnkit.suggest.choose import (
    balanced_first,
    entropies,
    kcenter_greedy,
    margins,
    spaced_first,
)


def test_margin_is_the_gap_between_the_two_most_probable_classes():
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.45, 0.45], [0.98, 0.01, 0.01]])
    assert margins(p) == pytest.approx([0.2, 0.0, 0.97])


def test_margin_measures_distance_to_the_decision_when_a_threshold_decides():
    p = np.array([[0.7, 0.3], [0.2, 0.8]])
    assert margins(p, threshold=0.3) == pytest.approx([0.0, 1.0])
    assert margins(p, threshold=0.5) == pytest.approx(margins(p))  # 2|p - 0.5| is the gap of two classes
    labels = np.array([[0.9, 0.45, 0.1], [0.6, 0.1, 0.95]])
    assert margins(labels, multi_label=True) == pytest.approx([0.1, 0.2])
    assert margins(labels, multi_label=True, thresholds=[0.5, 0.2, 0.5]) == pytest.approx([0.5, 0.2])


def test_entropy_is_shannons():
    p = np.random.default_rng(0).dirichlet(np.ones(4), size=20)
    assert entropies(p) == pytest.approx(scipy_entropy(p, axis=1), abs=1e-9)
    assert entropies(np.array([[0.5, 0.5]])) == pytest.approx([math.log(2)])
    labels = np.array([[0.5, 1.0]])
    assert entropies(labels, multi_label=True) == pytest.approx([math.log(2) / 2], abs=1e-6)


def test_no_class_takes_more_than_an_even_share_while_others_have_images():
    groups = ["a"] * 10 + ["b"] * 3 + ["c"] * 1
    chosen = balanced_first(range(14), groups, 6)
    counts = {g: sum(groups[i] == g for i in chosen) for g in "abc"}
    assert counts == {"a": 3, "b": 2, "c": 1}  # c ran out: its place goes to the best image left
    assert chosen == [0, 1, 10, 11, 13, 2]  # each class its share in the order given, then the rest in order
    assert balanced_first(range(14), groups, 6, balance=False) == [0, 1, 2, 3, 4, 5]
    assert len(balanced_first(range(14), groups, 14)) == 14  # the others ran out: the rest fill the picks


def brute_force_kcenter(vectors, n, covered):
    """Each pick: the image whose nearest centre (a labelled image, or an earlier pick) is farthest."""
    picks = []
    for _ in range(n):
        best, best_distance = None, -1.0
        for i, v in enumerate(vectors):
            if i in picks:
                continue
            d = min([covered[i]] + [float(np.linalg.norm(v - vectors[j])) for j in picks])
            if d > best_distance:
                best, best_distance = i, d
        picks.append(best)
    return picks


def test_kcenter_greedy_matches_its_definition():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(60, 5))
    covered = np.linalg.norm(vectors - rng.normal(size=(1, 5)), axis=1)
    picks, distances = kcenter_greedy(vectors, 8, covered)
    assert picks == brute_force_kcenter(vectors, 8, covered)
    assert np.all(np.diff(distances) <= 1e-12)  # each centre closes the gap: the farthest left only shrinks


def test_kcenter_never_picks_two_of_a_cluster_of_near_copies_while_another_cluster_is_unpicked():
    rng = np.random.default_rng(2)
    centres = rng.normal(scale=10, size=(5, 8))
    vectors = np.repeat(centres, 6, axis=0) + rng.normal(scale=0.01, size=(30, 8))
    picks, _ = kcenter_greedy(vectors, 5, None)
    assert sorted(p // 6 for p in picks) == [0, 1, 2, 3, 4]


def test_kcenter_labelled_images_count_as_covered():
    vectors = np.array([[0.0], [1.0], [10.0], [11.0]])
    covered = np.array([5.0, 5.0, 0.1, 0.1])  # the last two lie beside labelled images
    assert kcenter_greedy(vectors, 2, covered)[0] == [0, 1]  # 1 lies 1 from 0, still farther than 2 from a labelled


def test_spaced_keeps_the_ranking_but_passes_over_near_copies_of_labelled_or_chosen_images():
    vectors = np.array([[0.0], [0.01], [5.0], [5.02], [9.0], [20.0]])
    covered = np.array([4.0, 4.0, 4.0, 4.0, 0.1, 4.0])  # image 4 is a near-copy of a labelled image
    order = [0, 1, 2, 3, 4, 5]  # as a margin would rank them
    picks, distances = spaced_first(order, vectors, covered, 3, spacing=1.0)
    assert picks == [0, 2, 5] and distances.tolist() == pytest.approx([4.0, 4.0, 4.0])
    assert spaced_first(order, vectors, covered, 3, spacing=0.0)[0] == [0, 1, 2]  # no spacing: margin's order
    assert spaced_first(order, vectors, covered, 6, spacing=1.0)[0] == [0, 2, 5, 1, 3, 4]  # too few: the rest fill


def test_spaced_shares_picks_among_groups():
    vectors = np.arange(6, dtype=float)[:, None] * 10
    groups = ["a", "a", "a", "a", "b", "c"]
    picks, _ = spaced_first(range(6), vectors, np.full(6, 100.0), 3, spacing=1.0, groups=groups)
    assert picks == [0, 4, 5]


def test_kcenter_shares_picks_among_groups():
    vectors = np.array([[0.0], [100.0], [200.0], [300.0], [1.0]])
    groups = ["a", "a", "a", "a", "b"]
    picks, _ = kcenter_greedy(vectors, 2, None, groups)
    assert {groups[p] for p in picks} == {"a", "b"}


def test_with_few_labels_hybrid_picks_a_typical_image_of_each_large_group_not_the_unsure_ones_between():
    """Three groups of 30, 20 and 10 images and 5 images between them, where the run is least sure: with 2 labels
    per class, hybrid's 3 picks are an image near each group's centre, largest group first, whatever the margins
    say; with enough labels per class it follows the margins again."""
    from cnnkit.suggest.choose import COLD_START, choose

    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    groups = [centres[g] + rng.normal(0, 0.5, (size, 2)) for g, size in enumerate((30, 20, 10))]
    between = np.array([[5.0, 0.0], [5.0, 5.0], [0.0, 5.0], [5.0, 0.5], [4.5, 5.0]])
    vectors = np.vstack([*groups, between])
    margin = np.r_[np.full(60, 0.9), np.full(5, 0.01)]
    covered = np.linalg.norm(vectors - np.array([-20.0, -20.0]), axis=1)  # the labelled images lie far away
    names = ["a"] * len(vectors)
    picks, _ = choose("hybrid", 3, margin, margin, names, False, vectors, covered, labelled_per_class=2)
    spans = [(0, 30), (30, 50), (50, 60)]
    assert [next(g for g, (lo, hi) in enumerate(spans) if lo <= i < hi) for i in picks] == [0, 1, 2]
    for i, (lo, hi) in zip(picks, spans):  # typical: nearer its group's mean than half the group is
        to_mean = np.linalg.norm(vectors[lo:hi] - vectors[lo:hi].mean(0), axis=1)
        assert np.linalg.norm(vectors[i] - vectors[lo:hi].mean(0)) <= np.median(to_mean)
    warm, _ = choose("hybrid", 3, margin, margin, names, False, vectors, covered, labelled_per_class=COLD_START)
    assert set(warm) <= set(range(60, 65))


def test_with_few_labels_hybrid_passes_over_a_near_copy_of_a_labelled_image():
    from cnnkit.suggest.choose import typical_first

    vectors = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.2], [5.0, 5.0]])
    covered = np.array([0.0, 0.1, 0.2, 7.0])  # the first image is a labelled one's copy
    picks, distances = typical_first(vectors[:3], covered[:3], 1, spacing=0.05)
    assert picks == [1] and distances.tolist() == [0.1]  # the most central one apart from the labelled image
