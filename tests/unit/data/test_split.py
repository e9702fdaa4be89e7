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
