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
@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
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


def multi_label_set(tmp_path: Path) -> Path:
    """A labels CSV of a multi-label set (labels such as a|b): what a multi-label run would train on."""
    from tests.conftest import write_image_folder

    images = write_image_folder(tmp_path / "images", ["a", "b"], per_class=6, size=16)
    rows = [f"{p.relative_to(tmp_path).as_posix()},{'a|b' if i % 3 == 0 else p.parent.name}"
            for i, p in enumerate(sorted(images.rglob("*.png")))]
    (tmp_path / "labels.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    return tmp_path / "labels.csv"


def data_commands(data: Path, tmp_path: Path) -> dict:
    """Each capability asked of a data set before any run exists, and the call that asks it."""
    from cnnkit.baselines.fit import train_baseline
    from cnnkit.config import TrainConfig
    from cnnkit.recipes.auto import auto_train
    from cnnkit.training.fit import train
    from tests.conftest import write_image_folder

    pool = write_image_folder(tmp_path / "pool", ["x"], per_class=2, size=16)
    return {
        "auto": lambda: auto_train(data, tmp_path / "auto", budget=60, progress=False),
        "balance": lambda: train(data, tmp_path / "balance", TrainConfig(model="tiny_cnn", balance="weights"),
                                 progress=False),
        "baseline": lambda: train_baseline(data, tmp_path / "baseline"),
        "unlabelled": lambda: train(data, tmp_path / "unlabelled",
                                    TrainConfig(model="efficientnet_lite0", pretrained=True, image_size=(32, 32),
                                                unlabelled=str(pool)), progress=False),
    }


def test_every_command_asks_the_table_of_the_data_it_would_train_on(tmp_path):
    """A multi-label set is refused, in the table's words, by each command whose capability its kind lacks
    (``unlabelled`` included: self-training pseudo-labels one class per image)."""
    kind = KINDS["multi-label"]
    calls = data_commands(multi_label_set(tmp_path), tmp_path)
    assert set(calls) == {c for c in CAPABILITIES if c not in kind.supports and c in ("auto", "balance", "baseline",
                                                                                     "unlabelled")}
    for capability, call in calls.items():
        with pytest.raises(CnnkitError) as refused:
            call()
        words = kind.data_refusal("DATA", capability).removeprefix("DATA")
        assert words in str(refused.value), (capability, str(refused.value))
