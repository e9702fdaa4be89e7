from collections import Counter

import pytest

from cnnkit.data.split import SplitManifest, make_split, stratified_indices
from cnnkit.errors import DataError


def _samples(counts: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"{c}/{i}.png", c) for c, n in counts.items() for i in range(n)]


def test_split_is_disjoint_complete_and_stratified():
    samples = _samples({"a": 100, "b": 40, "c": 7})
    manifest = make_split("/data", "flat", {"all": samples}, 0.15, 0.2, seed=3)
    parts = [set(manifest.splits[s]) for s in ("train", "val", "test")]
    assert sum(len(p) for p in parts) == len(samples)
    assert set().union(*parts) == set(samples)
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    test = Counter(c for _, c in manifest.splits["test"])
    assert test == {"a": 20, "b": 8, "c": 1}  # round(n * 0.2), at least one per class


def test_same_seed_same_split_other_seed_other_split():
    samples = {"all": _samples({"a": 30, "b": 30})}
    one = make_split("/d", "flat", samples, 0.2, 0.2, seed=7)
    assert one == make_split("/d", "flat", samples, 0.2, 0.2, seed=7)
    assert one.splits["test"] != make_split("/d", "flat", samples, 0.2, 0.2, seed=8).splits["test"]


def test_every_class_keeps_a_training_image():
    labels = ["a", "a", "b"]
    parts = stratified_indices(labels, {"val": 0.5, "test": 0.5}, seed=0)
    assert Counter(labels[i] for i in parts["train"]) == {"a": 1, "b": 1}


def test_presplit_kept_as_given_and_val_carved_from_train():
    train, test = _samples({"a": 20, "b": 20}), [("test/a/0.png", "a")]
    manifest = make_split("/d", "presplit", {"train": train, "test": test}, 0.25, 0.5, seed=0)
    assert manifest.splits["test"] == test
    assert len(manifest.splits["val"]) == 10 and len(manifest.splits["train"]) == 30
    assert not set(manifest.splits["val"]) & set(manifest.splits["train"])


def test_manifest_round_trips_through_json_dict():
    manifest = make_split("/d", "flat", {"all": _samples({"a": 5, "b": 5})}, 0.2, 0.2, seed=1)
    assert SplitManifest.from_dict(manifest.to_dict()) == manifest


@pytest.mark.parametrize("val, test", [(0.5, 0.5), (-0.1, 0.2), (0.2, 1.0)])
def test_bad_fractions(val, test):
    with pytest.raises(DataError):
        make_split("/d", "flat", {"all": _samples({"a": 5, "b": 5})}, val, test, seed=0)


def test_copies_go_to_one_split_and_without_copies_the_split_is_unchanged():
    samples = _samples({"a": 40, "b": 40})
    plain = make_split("/d", "flat", {"all": samples}, 0.2, 0.2, seed=5)
    assert make_split("/d", "flat", {"all": samples}, 0.2, 0.2, seed=5, copies=[]) == plain
    copies = [["a/0.png", "a/1.png", "a/2.png"], ["a/3.png", "b/3.png"], ["b/7.png", "b/8.png"]]
    for seed in range(20):
        manifest = make_split("/d", "flat", {"all": samples}, 0.2, 0.2, seed=seed, copies=copies)
        where = {p: name for name, found in manifest.splits.items() for p, _ in found}
        assert sorted(where) == sorted(p for p, _ in samples)  # nothing dropped
        assert all(len({where[p] for p in group}) == 1 for group in copies), seed


def test_a_train_and_val_folder_scores_val_as_the_test_split():
    train, val = _samples({"a": 20, "b": 20}), [(f"val/{c}/{i}.png", c) for c in "ab" for i in range(5)]
    manifest = make_split("/d", "presplit", {"train": train, "val": val}, 0.25, 0.5, seed=0)
    assert manifest.splits["test"] == val
    assert len(manifest.splits["val"]) == 10 and len(manifest.splits["train"]) == 30
    assert Counter(c for _, c in manifest.splits["val"]) == {"a": 5, "b": 5}  # stratified
    kept = make_split("/d", "presplit", {"train": train, "val": val}, 0.25, 0.5, seed=0, val_folder="validation")
    assert kept.splits["val"] == val and kept.splits["test"] == [] and len(kept.splits["train"]) == 40
