"""What the served page offers per run: a scan only for runs trained on patches (whatever their input size), and the
run it opens on (the best test accuracy, else validation accuracy, else the first given)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from cnnkit.data.preprocess import Preprocessing
from cnnkit.run import ModelSpec, RunRecord
from cnnkit.run.results import Thresholds
from cnnkit.serve.runs import best_run, scan_offer


def record(classes=("ants", "bees"), size=64, **changes) -> RunRecord:
    """A scratch CNN's record on whole photos at a small input size: the case that used to start scanning."""
    model = ModelSpec("simple_cnn", len(classes), 3)
    return RunRecord(model, classes, Preprocessing((size, size), 3, (0.5,) * 3, (0.25,) * 3)).replace(**changes)


def folder(tmp_path: Path, manifest: str | None) -> Path:
    (tmp_path / "data").mkdir()
    if manifest is not None:
        (tmp_path / "data" / "manifest.csv").write_text(manifest, encoding="utf-8")
    return tmp_path / "data"


@pytest.mark.parametrize("size", [16, 64, 128, 224])
def test_a_run_trained_on_whole_images_classifies_whatever_its_input_size(tmp_path, size):
    offer = scan_offer(record(size=size), folder(tmp_path, None))
    assert offer.available and not offer.offered and "whole images" in offer.reason


def test_a_run_trained_on_cnnkit_patches_output_offers_the_scan(tmp_path):
    root = folder(tmp_path, "file,class,photo,row,col,dot_row,dot_col,kind\nseal/a.png,seal,p.png,1,2,1,2,dot\n")
    offer = scan_offer(record(classes=("pup", "seal", "rock"), size=224), root)  # no background class, large input
    assert offer.available and offer.offered and "`cnnkit patches`" in offer.reason


def test_a_manifest_of_another_kind_is_not_taken_for_patches(tmp_path):
    offer = scan_offer(record(), folder(tmp_path, "path,label\na.png,ants\n"))
    assert not offer.offered


@pytest.mark.parametrize("changes, words", [
    ({"classes": ("background", "boat", "car", "tree")}, "'background' class"),  # the aerial demo's patches
    ({"classes": ("Background_sea", "seal")}, "'Background_sea' class"),  # what a scan ignores when it counts
    ({"scan_thresholds": Thresholds({"bees": 0.7}, "chosen on val.png")}, "dotted photo"),
])
def test_other_marks_of_a_patch_classifier_offer_the_scan(changes, words):
    if "classes" in changes:
        changes = {**changes, "model": ModelSpec("patch_cnn", len(changes["classes"]), 3)}
    offer = scan_offer(record(**changes), None)  # the data folder gone, or never saved
    assert offer.offered and words in offer.reason


@pytest.mark.parametrize("changes, words", [
    ({"multi_label": True, "classes": ("background", "seal")}, "multi-label"),
    ({"model": ModelSpec("knn", 2, 3, kind="baseline", method="knn")}, "baseline"),
])
def test_a_run_that_cannot_scan_is_never_offered_one(changes, words):
    offer = scan_offer(record(**changes), None)
    assert not offer.available and not offer.offered and words in offer.reason


@dataclass
class Run:
    """What ``best_run`` reads of a served run."""

    id: str
    test: float | None = None
    val_accuracy: float | None = None

    def test_scores(self) -> dict | None:
        return None if self.test is None else {"accuracy": self.test, "n": 30}


@pytest.mark.parametrize("runs, chosen, words", [
    ([Run("a", 0.7, 0.99), Run("b", 0.9, 0.5), Run("c", None, 1.0)], "b", "test accuracy, 0.900"),
    ([Run("a", None, 0.8), Run("b", None, 0.95), Run("c")], "b", "validation accuracy, 0.950"),
    ([Run("a", None, 0.99), Run("b", 0.6, 0.6)], "b", "test"),  # a held-out score beats a validation score
    ([Run("a", 0.8), Run("b", 0.8)], "a", "test"),  # a tie goes to the run given first
    ([Run("a"), Run("b")], "a", "first given"),
])
def test_the_page_opens_on_the_best_run(runs, chosen, words):
    run, why = best_run(runs)
    assert run.id == chosen and words in why
