"""``cnnkit label``'s server: labels written at once in the CSV format training reads, skip and undo, progress,
a restart that resumes where it was, learning again's data, Label Studio tasks, and bad requests answered with one
line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from cnnkit.data.table import scan_csv
from cnnkit.errors import DataError
from cnnkit.label import LabelsFile, open_session
from cnnkit.label.learn import training_csv
from cnnkit.label.studio import tasks
from cnnkit.run import RunFolder
from tests import warm_cli
from tests.conftest import pattern_image

pytest.importorskip("fastapi", reason="cnnkit[serve] is not installed")
from fastapi.testclient import TestClient

from cnnkit.label.app import create_label_app

CLASSES = ("left", "right", "top")


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    """Six images, two of each class, one of them in a sub-folder."""
    rng = np.random.default_rng(5)
    root = tmp_path / "pool"
    (root / "more").mkdir(parents=True)
    for i in range(6):
        folder = root / "more" if i == 5 else root
        pattern_image(i % 3, rng).save(folder / f"image{i}.png")
    return root


def client_for(run: Path, pool: Path, labels: Path, **kwargs) -> TestClient:
    return TestClient(create_label_app(open_session(run, pool, labels, order="file", **kwargs)))


def labels_in(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as f:
        return {row["path"]: row["label"] for row in csv.DictReader(f)}


def test_each_label_is_in_the_csv_at_once_and_training_reads_it(trained_run, pool, tmp_path):
    labels = tmp_path / "labels.csv"
    client = client_for(trained_run, pool, labels)
    state = client.get("/api/state").json()
    assert state["classes"] == list(CLASSES) and (state["labelled"], state["total"]) == (0, 6)
    assert state["current"] == "image0.png" and state["guess"]["label"] in CLASSES
    given = {}
    for label in ("left", "right", "top"):
        current = client.get("/api/state").json()["current"]
        state = client.post("/api/label", json={"path": current, "label": label}).json()
        given[f"pool/{current}"] = label
        assert labels_in(labels) == given  # written before the answer: nothing waits in memory
    assert state["labelled"] == 3 and state["current"] == "image3.png"
    scanned = scan_csv(labels)  # cnnkit's own CSV reader: paths relative to the CSV's folder
    assert scanned.classes == CLASSES
    assert sorted(scanned.samples["all"]) == sorted(given.items())
    assert not list(labels.parent.glob(".labels.csv.*"))  # no temporary file left beside it


def test_skip_shows_an_image_again_after_the_others_and_undo_takes_back(trained_run, pool, tmp_path):
    labels = tmp_path / "labels.csv"
    client = client_for(trained_run, pool, labels)
    state = client.post("/api/skip", json={"path": "image0.png"}).json()
    assert state["current"] == "image1.png" and state["skipped"] == 1 and state["labelled"] == 0
    client.post("/api/label", json={"path": "image1.png", "label": "right"})
    state = client.post("/api/undo").json()  # the label of image1 taken back: it is shown again, first
    assert state["current"] == "image1.png" and state["labelled"] == 0 and labels_in(labels) == {}
    state = client.post("/api/undo").json()  # the skip taken back: image0 again
    assert state["current"] == "image0.png" and state["skipped"] == 0 and not state["can_undo"]
    for name in ("image0.png", "image1.png", "image2.png", "image3.png", "image4.png"):
        client.post("/api/skip" if name == "image0.png" else "/api/label", json={"path": name, "label": "top"})
    state = client.post("/api/label", json={"path": "more/image5.png", "label": "top"}).json()
    assert state["current"] == "image0.png"  # only the skipped one is left
    state = client.post("/api/label", json={"path": "image0.png", "label": "left"}).json()
    assert state["current"] is None and (state["labelled"], state["total"]) == (6, 6)


def test_a_restarted_server_resumes_where_it_was(trained_run, pool, tmp_path):
    labels = tmp_path / "out" / "labels.csv"
    first = client_for(trained_run, pool, labels)
    first.post("/api/label", json={"path": "image0.png", "label": "left"})
    first.post("/api/label", json={"path": "image1.png", "label": "right"})
    del first  # the server dies: only the CSV remains
    state = client_for(trained_run, pool, labels).get("/api/state").json()
    assert (state["labelled"], state["total"], state["current"]) == (2, 6, "image2.png")
    assert labels_in(labels) == {str(pool / "image0.png"): "left", str(pool / "image1.png"): "right"}  # outside


def test_an_earlier_labels_csv_is_continued_and_its_other_rows_kept(trained_run, pool, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(f"path,label\nelsewhere.png,cat\n{pool / 'image2.png'},top\n", encoding="utf-8")
    client = client_for(trained_run, pool, labels)
    assert client.get("/api/state").json()["labelled"] == 1
    client.post("/api/label", json={"path": "image0.png", "label": "left"})
    assert labels_in(labels) == {"elsewhere.png": "cat", "pool/image2.png": "top", "pool/image0.png": "left"}


@pytest.mark.parametrize("endpoint, body, words", [
    ("/api/label", {"path": "image0.png", "label": "dog"}, "'dog' is not a class of the run"),
    ("/api/label", {"path": "../labels.csv", "label": "left"}, "not an image of the pool"),
    ("/api/label", {"path": "/etc/passwd", "label": "left"}, "not an image of the pool"),
    ("/api/skip", {"path": "nope.png"}, "not an image of the pool"),
    ("/api/label", {"path": "image0.png"}, "needs `label`"),
    ("/api/undo", None, "Nothing to undo"),
])
def test_bad_requests_are_answered_with_one_line(trained_run, pool, tmp_path, endpoint, body, words):
    labels = tmp_path / "labels.csv"
    client = client_for(trained_run, pool, labels)
    answer = client.post(endpoint, json=body) if body is not None else client.post(endpoint)
    assert answer.status_code == 400 and words in answer.json()["detail"]
    assert not labels.exists()


def test_only_pool_images_are_shown(trained_run, pool, tmp_path):
    client = client_for(trained_run, pool, tmp_path / "labels.csv")
    assert client.get("/api/image", params={"path": "more/image5.png"}).headers["content-type"] == "image/jpeg"
    answer = client.get("/api/image", params={"path": "../pool/../../" + str(tmp_path)})
    assert answer.status_code == 400 and "not an image of the pool" in answer.json()["detail"]


def test_a_suggestion_list_gives_the_order(trained_run, pool, tmp_path):
    suggestions = tmp_path / "to_label.csv"
    suggestions.write_text("rank,path\n1,image4.png\n2,more/image5.png\n", encoding="utf-8")
    client = client_for(trained_run, pool, tmp_path / "labels.csv", suggestions=suggestions)
    state = client.get("/api/state").json()
    assert (state["current"], state["total"]) == ("image4.png", 2)
    suggestions.write_text("rank,path\n1,other/image9.png\n", encoding="utf-8")
    with pytest.raises(DataError, match="other/image9.png, which is not an image of the pool"):
        open_session(trained_run, pool, tmp_path / "labels.csv", suggestions)


def test_the_default_order_is_suggests_ranking_without_the_runs_own_images(trained_run, pool, pattern_data, tmp_path):
    own = min((pattern_data / "left").glob("*.png"))
    (pool / "own.png").write_bytes(own.read_bytes())
    session = open_session(trained_run, pool, tmp_path / "labels.csv")
    assert len(session.images) == 6 and pool / "own.png" not in session.images


def test_a_labels_csv_of_other_columns_is_refused(trained_run, pool, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label,split\na.png,left,train\n", encoding="utf-8")
    with pytest.raises(DataError, match="has the columns path,label,split"):
        open_session(trained_run, pool, labels, order="file")


def test_learning_again_trains_on_the_runs_split_and_the_new_labels(trained_run, pool, tmp_path):
    labels = LabelsFile(tmp_path / "labels.csv")
    labels.set(pool / "image0.png", "left")
    labels.set(pool / "image1.png", "right")
    data = tmp_path / "learn" / "data.csv"
    assert training_csv(trained_run, labels, data) == 2
    scanned = scan_csv(data)
    split = RunFolder(trained_run).read_split()
    assert scanned.layout == "presplit"
    assert {s: len(v) for s, v in scanned.samples.items()} == {
        s: len(v) + (2 if s == "train" else 0) for s, v in split.splits.items() if v}


def test_label_studio_tasks_hold_the_images_still_to_label_with_the_runs_guess(trained_run, pool, tmp_path):
    session = open_session(trained_run, pool, tmp_path / "labels.csv", order="file")
    session.label("image0.png", "left")
    found = tasks(session, "tiny")
    assert [t["data"]["cnnkit_path"] for t in found] == [f"image{i}.png" for i in range(1, 5)] + ["more/image5.png"]
    assert Path(found[0]["data"]["image"]) == pool / "image1.png"
    prediction = found[0]["predictions"][0]
    assert prediction["model_version"] == "tiny" and prediction["result"][0]["value"]["choices"][0] in CLASSES


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_the_command_refuses_a_missing_pool_in_one_line(trained_run, tmp_path):
    done = warm_cli.run("label", str(tmp_path / "nope"), "--run", str(trained_run), "--labels",
                        str(tmp_path / "labels.csv"), timeout=240)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "is not a folder" in done.stderr


@pytest.mark.slow  # over 3 s: a server, subprocesses or a training (the quick suite stays under 2 minutes)
def test_the_command_writes_label_studio_tasks(trained_run, pool, tmp_path):
    out = tmp_path / "tasks.json"
    done = warm_cli.run("label", str(pool), "--run", str(trained_run), "--order", "file", "--label-studio-tasks",
                        str(out), cwd=tmp_path, timeout=240)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(out.read_text())) == 6


def test_a_new_run_gives_new_guesses_and_its_own_ranking(trained_run, pool, tmp_path):
    from cnnkit.label.start import learned, ranked

    session = open_session(trained_run, pool, tmp_path / "labels.csv", order="file")
    session.label("image0.png", "left")
    before = list(session.images)
    session.guesses[pool / "image1.png"] = "stale"
    learned(session, trained_run, rank=True)
    assert sorted(session.images) == sorted(before) and not session.guesses
    assert session.images[:5] == ranked(trained_run, pool, before)[:5]


def _annotated(found: list[dict], truth: dict[str, str]) -> list[dict]:
    """Label Studio's JSON export of cnnkit's tasks, as a person labelled them (a cancelled annotation first)."""
    export = []
    for number, task in enumerate(found, 1):
        choice = {"from_name": "choice", "to_name": "image", "type": "choices",
                  "value": {"choices": [truth[task["data"]["cnnkit_path"]]]}}
        cancelled = {"result": [{**choice, "value": {"choices": ["top"]}}], "was_cancelled": True}
        export.append({"id": number, "data": task["data"], "predictions": task.get("predictions", []),
                       "annotations": [{"result": [choice], "was_cancelled": False}, cancelled]})
    return export


@pytest.mark.parametrize("form", ["json", "csv"])
def test_the_label_studio_round_trip_gives_back_the_same_labels(trained_run, pool, tmp_path, form):
    from cnnkit.label.studio import import_export

    labels = tmp_path / "labels.csv"
    session = open_session(trained_run, pool, labels, order="file")
    truth = {session.name(image): CLASSES[i % 3] for i, image in enumerate(session.images)}
    export = _annotated(tasks(session), truth)
    if form == "json":
        (tmp_path / "export.json").write_text(json.dumps(export), encoding="utf-8")
    else:  # the CSV export: the task's data fields and the choice as columns
        with open(tmp_path / "export.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["annotation_id", "choice", "cnnkit_path", "id", "image"])
            for task in export:
                writer.writerow([task["id"], truth[task["data"]["cnnkit_path"]], task["data"]["cnnkit_path"],
                                 task["id"], task["data"]["image"]])
    assert import_export(open_session(trained_run, pool, labels, order="file"), tmp_path / f"export.{form}") == 6
    assert labels_in(labels) == {f"pool/{path}": label for path, label in truth.items()}
    assert scan_csv(labels).classes == CLASSES


def test_a_label_studio_export_of_another_class_or_image_is_refused_naming_the_task(trained_run, pool, tmp_path):
    from cnnkit.label.studio import import_export

    session = open_session(trained_run, pool, tmp_path / "labels.csv", order="file")
    export = tmp_path / "export.json"
    export.write_text(json.dumps([{"data": {"image": str(pool / "image0.png")}, "annotations": [
        {"result": [{"type": "choices", "value": {"choices": ["dog"]}}]}]}]), encoding="utf-8")
    with pytest.raises(DataError, match=r"task 1: 'dog' is not a class of the run"):
        import_export(session, export)
    export.write_text(json.dumps([{"image": "/data/upload/1/x.png", "choice": "left"}]), encoding="utf-8")
    with pytest.raises(DataError, match=r"task 1: image '/data/upload/1/x.png' is not an image of the pool"):
        import_export(session, export)
    assert not (tmp_path / "labels.csv").exists()


def test_an_unreadable_pool_file_is_shown_without_a_guess_and_named(trained_run, pool, tmp_path):
    (pool / "broken.png").write_bytes(b"not a png")
    client = client_for(trained_run, pool, tmp_path / "labels.csv")
    state = client.get("/api/state").json()
    assert state["current"] == "broken.png" and state["guess"] == {"label": "", "probability": None}
    answer = client.get("/api/image", params={"path": "broken.png"})
    assert answer.status_code == 400 and "broken.png" in answer.json()["detail"]
    assert client.post("/api/skip", json={"path": "broken.png"}).json()["current"] == "image0.png"


def test_learning_again_refuses_without_labels_and_shows_why_a_training_failed(trained_run, pool, tmp_path):
    import time

    from cnnkit.label.learn import Learner

    labels = tmp_path / "labels.csv"
    session = open_session(trained_run, pool, labels, order="file")
    trained = []
    learner = Learner(trained_run, session.labels, ["train", "--epochs", "0"], trained.append)
    client = TestClient(create_label_app(session, learner))
    answer = client.post("/api/learn")
    assert answer.status_code == 400 and "no image of the pool is labelled yet" in answer.json()["detail"]
    client.post("/api/label", json={"path": "image0.png", "label": "left"})
    learn = client.post("/api/learn").json()["learn"]
    assert learn["state"] == "running" and learn["command"].startswith("cnnkit train ")
    deadline = time.monotonic() + 120  # a bound for a process that never ends, not a timing assertion
    while learn["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        learn = client.get("/api/state").json()["learn"]
    assert learn["state"] == "failed" and "epochs" in learn["log"][-1] and not trained
