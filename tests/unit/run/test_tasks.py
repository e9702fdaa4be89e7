"""The table of run kinds: every kind's answer to every capability, written out here so that a change to the table
is deliberate, and every command asking the table: a run of each kind is refused, in the table's words, exactly
by the commands its kind does not support."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnnkit.errors import CnnkitError, RunError
from cnnkit.run import RunFolder
from cnnkit.run.tasks import CAPABILITIES, KINDS, kind_named, require

OLD_RUN = Path(__file__).resolve().parents[2] / "fixtures" / "f7c7ce8" / "tiny_binary"

EXPECTED = {  # kind: the capabilities it supports
    "classify": set(CAPABILITIES) - {"anomaly"},
    "multi-label": {"network", "predict", "evaluate", "export", "serve", "inspect", "latent", "suggest"},
    "reconstruct": {"network", "latent", "knn", "anomaly"},
    "points": {"scan"},
}


def test_every_kind_answers_every_capability_as_written():
    assert set(KINDS) == set(EXPECTED)
    for name, kind in KINDS.items():
        assert kind.supports == EXPECTED[name], name
        assert kind.supports <= set(CAPABILITIES)
        assert kind.what and kind.instead.startswith(" ")


@pytest.mark.parametrize("task, multi_label, name", [("classify", False, "classify"), ("classify", True, "multi-label"),
                                                      ("reconstruct", False, "reconstruct"), ("points", False, "points")])
def test_a_record_names_its_kind(task, multi_label, name):
    assert kind_named(task, multi_label).name == name


def test_an_unknown_kind_or_capability_is_named():
    with pytest.raises(RunError, match="Unknown kind of run 'segment'"):
        kind_named("segment")
    with pytest.raises(ValueError, match="'fly' is not a capability"):
        require(KINDS["classify"], "fly", "run")


def as_kind(tmp_path: Path, task: str, multi_label: bool) -> Path:
    """The fixture run, its record made a run of another kind (what is refused is refused before any network)."""
    run = Path(shutil.copytree(OLD_RUN, tmp_path / f"{task}-{multi_label}"))
    record = json.loads((run / "config.json").read_text())
    record.update(task=task, multi_label=multi_label or None,
                  points={"settings": {}, "photos": []} if task == "points" else None)
    (run / "config.json").write_text(json.dumps({k: v for k, v in record.items() if v is not None}))
    return run


def commands(run: Path, tmp_path: Path) -> dict:
    """Each capability that a command asks of a run, and the call that asks it."""
    from cnnkit.anomaly.score import autoencoder_record
    from cnnkit.config import EvaluateConfig
    from cnnkit.evaluation.evaluate import evaluate_run
    from cnnkit.evaluation.threshold import store_threshold
    from cnnkit.export.run import export_run
    from cnnkit.inspection.run import open_run
    from cnnkit.scan.photo import scan_photo
    from cnnkit.scan.verify import load_verifier
    from cnnkit.serve.runs import ServedRun
    from cnnkit.suggest import suggest

    photo = next(OLD_RUN.parent.rglob("*.png"), None) or next((OLD_RUN.parent).rglob("*.json"))
    return {
        "network": lambda: RunFolder(run).network(RunFolder(run).read_record()),
        "evaluate": lambda: evaluate_run(run, out=tmp_path / "eval"),
        "knn": lambda: evaluate_run(run, out=tmp_path / "knn", config=EvaluateConfig(knn=3)),
        "export": lambda: export_run(run),
        "threshold": lambda: store_threshold(run, threshold=0.5),
        "inspect": lambda: open_run(run),
        "anomaly": lambda: autoencoder_record(RunFolder(run)),
        "scan": lambda: scan_photo(run, photo, tmp_path / "scan"),
        "verify": lambda: load_verifier(run),
        "serve": lambda: ServedRun("a", run),
        "suggest": lambda: suggest(run, OLD_RUN.parent / "transfer_test_efficientnet" / "dataset", tmp_path / "to-label",
                                   n=2),
    }


@pytest.mark.parametrize("task, multi_label", [("classify", False), ("classify", True), ("reconstruct", False),
                                                ("points", False)])
def test_every_command_asks_the_table(tmp_path, task, multi_label):
    run = as_kind(tmp_path, task, multi_label)
    kind = kind_named(task, multi_label)
    for capability, call in commands(run, tmp_path).items():
        refusal = kind.refusal(run, capability)
        try:
            call()
            message = ""
        except CnnkitError as e:  # a supported command may still fail later (the fixture is a tiny classifier)
            message = str(e)
        supported = capability in kind.supports
        assert (refusal in message) != supported, (kind.name, capability, message)


def test_every_field_of_the_record_is_typed():
    """No bare ``dict`` on the record or any of its parts: what a record holds is read by attribute, never by
    string keys (a mapping of names to numbers, ``dict[str, float]``, is typed)."""
    import dataclasses
    import re
    import typing

    import cnnkit.run.record as record_module
    import cnnkit.run.results as results_module

    parts = [obj for module in (record_module, results_module) for obj in vars(module).values()
             if dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__]
    loose = [f"{cls.__name__}.{f.name}: {f.type}" for cls in parts for f in dataclasses.fields(cls)
             if re.search(r"\b(dict|Any)\b(?!\[)", str(f.type)) and "Any]" not in str(f.type)
             or str(f.type) in ("dict", "dict | None", "list", "typing.Any", "Any")]
    assert len(parts) >= 15 and not loose, loose
    assert typing.get_type_hints(record_module.RunRecord)["recipe"] == results_module.Recipe | None
