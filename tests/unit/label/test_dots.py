"""``cnnkit label PHOTO --dots CSV --run POINT_RUN``: the dots file written in the format every command reads,
accept, reject, move, add, class and undo through the HTTP API, a restart (and a SIGKILL) that loses no dot, the
detector's proposals, learning again's photos and command, and bad input answered in one line."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from cnnkit.data.dots import load_dots
from cnnkit.errors import CnnkitError, DataError
from cnnkit.label.dot_learn import DotsLearner, learning_photos, points_flags
from cnnkit.label.dot_start import dots_learner, open_dot_session
from cnnkit.label.dots import DotsFile
from cnnkit.label.dotting import DotSession, Proposal
from cnnkit.run import RunFolder
from tests import warm_cli
from tests.unit.dotted_photos import blob_photo, cli
from tests.unit.servers import free_port, post, wait_for_port

pytest.importorskip("fastapi", reason="cnnkit[serve] is not installed")
from fastapi.testclient import TestClient

from cnnkit.label.dot_app import create_dot_app

PROPOSALS = [Proposal(40.0, 40.0, 0.9), Proposal(100.0, 200.0, 0.8), Proposal(300.0, 60.0, 0.4)]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "new.png"
    blob_photo(path, seed=7, count=8, size=384)
    return path


def session_on(photo: Path, dots: Path, classes=("adult", "pup")) -> DotSession:
    """A session with fixed proposals (the detector's are tested on their own)."""
    session = DotSession([photo], [DotsFile.open(dots, 384, 384)], list(classes), lambda *_: list(PROPOSALS))
    session.ensure_proposals(0)
    session.worker.shutdown(wait=True)
    return session


def rows(path: Path) -> list[tuple[str, float, float]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [(r["class_name"], float(r["row"]), float(r["col"])) for r in csv.DictReader(f)]


def test_dots_given_are_read_back_by_the_reader_of_scan_points_and_patches(photo, tmp_path, capsys):
    dots = tmp_path / "new-dots.csv"
    session = session_on(photo, dots)
    session.accept(0, 0)
    session.add(0, 200.5, 150.25, "pup")
    assert load_dots(dots, 384, 384) == [("adult", 40.0, 40.0), ("pup", 200.5, 150.2)]
    code, _, err = cli("patches", photo, "--dots", dots, "--size", 32, "--out", tmp_path / "patches", capsys=capsys)
    assert code == 0, err
    assert {p.parent.name for p in (tmp_path / "patches").glob("*/*.png")} == {"adult", "pup", "background"}


def test_accept_reject_move_add_class_delete_and_undo_through_the_api(photo, tmp_path):
    dots = tmp_path / "new-dots.csv"
    client = TestClient(create_dot_app(session_on(photo, dots)))
    shown = client.get("/api/photo", params={"photo": 0}).json()
    assert [p["id"] for p in shown["proposals"]] == [0, 1, 2] and shown["dots"] == []
    answer = client.post("/api/accept", json={"photo": 0, "proposal": 1, "class_name": "pup"}).json()
    assert [p["id"] for p in answer["proposals"]] == [0, 2]
    answer = client.post("/api/reject", json={"photo": 0, "proposal": 2}).json()
    assert [p["id"] for p in answer["proposals"]] == [0]
    client.post("/api/add", json={"photo": 0, "row": 250, "col": 250, "class_name": "adult"})
    client.post("/api/move", json={"photo": 0, "dot": 0, "row": 104, "col": 203})
    client.post("/api/class", json={"photo": 0, "dot": 1, "class_name": "pup"})
    assert rows(dots) == [("pup", 104.0, 203.0), ("pup", 250.0, 250.0)]
    answer = client.post("/api/delete", json={"photo": 0, "dot": 1}).json()
    assert rows(dots) == [("pup", 104.0, 203.0)] and len(answer["dots"]) == 1
    client.post("/api/undo", json={})
    assert rows(dots) == [("pup", 104.0, 203.0), ("pup", 250.0, 250.0)]
    answer = client.post("/api/accept-all", json={"photo": 0, "top": 0, "bottom": 384, "left": 0, "right": 384}).json()
    assert answer["proposals"] == [] and rows(dots)[-1] == ("adult", 40.0, 40.0)
    assert client.get("/api/tile", params={"photo": 0, "level": 0, "row": 0, "col": 0}).content[:2] == b"\xff\xd8"


@pytest.mark.parametrize(("endpoint", "body", "words"), [
    ("/api/add", {"photo": 0, "row": 500, "col": 3, "class_name": "adult"}, "outside the photo"),
    ("/api/add", {"photo": 0, "row": 5, "col": 3, "class_name": "cat"}, "not a class"),
    ("/api/add", {"photo": 3, "row": 5, "col": 3, "class_name": "adult"}, "`photo`"),
    ("/api/accept", {"photo": 0, "proposal": 9}, "not a proposal"),
    ("/api/move", {"photo": 0, "dot": 0, "row": 5, "col": "x"}, "`col`"),
    ("/api/undo", {}, "Nothing to undo")])
def test_bad_requests_are_answered_with_one_line(photo, tmp_path, endpoint, body, words):
    client = TestClient(create_dot_app(session_on(photo, tmp_path / "d.csv")))
    answer = client.post(endpoint, json=body)
    assert answer.status_code == 400 and words in answer.json()["detail"]
    assert "\n" not in answer.json()["detail"]


def test_a_restarted_session_resumes_with_its_dots_and_without_the_rejected_proposals(photo, tmp_path):
    dots = tmp_path / "new-dots.csv"
    first = session_on(photo, dots)
    first.accept(0, 0)
    first.reject(0, 1)
    first.review(0, (0, 192, 0, 384))
    again = session_on(photo, dots)
    assert [p.row for _, p in again.shown(0)] == [300.0]
    assert again.files[0].reviewed_box() == (0, 192, 0, 384) and len(again.files[0].dots) == 1


def test_a_dots_file_of_other_columns_is_refused_not_rewritten(photo, tmp_path):
    dots = tmp_path / "noaa.csv"
    dots.write_text("tid,cls,row,col,class_name\n1,0,10,10,adult\n", encoding="utf-8")
    with pytest.raises(DataError, match="class_name,row,col only"):
        DotsFile.open(dots, 384, 384)
    assert dots.read_text(encoding="utf-8").startswith("tid,cls")


def test_the_detectors_detections_are_proposed_and_a_classifier_run_is_refused(untrained_detector, trained_run,
                                                                               photo, tmp_path):
    session = open_dot_session(untrained_detector, [photo], [tmp_path / "d.csv"])
    session.ensure_proposals(0)
    session.worker.shutdown(wait=True)
    state = session.photo_state(0)
    assert state["proposing"] == "" and all(p["score"] >= 0.3 for p in state["proposals"])
    assert session.classes == ["blob"]  # the classes of the dots the detector learned from
    with pytest.raises(CnnkitError, match="not a point detector"):
        open_dot_session(trained_run, [photo], [tmp_path / "d.csv"])
    with pytest.raises(CnnkitError, match="one CSV per photo"):
        open_dot_session(untrained_detector, [photo, photo], [tmp_path / "d.csv"])


def test_the_command_refuses_bad_input_in_one_line(untrained_detector, tmp_path, capsys):
    (tmp_path / "not-a-photo.png").write_text("text", encoding="utf-8")
    code, _, err = cli("label", tmp_path / "not-a-photo.png", "--dots", tmp_path / "d.csv", "--run",
                       untrained_detector, capsys=capsys)
    assert code != 0 and "not-a-photo.png" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_learning_again_as_a_command_without_a_dot_and_a_pool_flag_with_dots_are_refused_in_one_line(
        untrained_detector, photo, tmp_path, capsys):
    code, _, err = cli("label", photo, "--dots", tmp_path / "d.csv", "--run", untrained_detector, "--learn-again",
                       capsys=capsys)
    assert code != 0 and "Nothing to learn from" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("label", photo, "--dots", tmp_path / "d.csv", "--run", untrained_detector, "--suggestions",
                       tmp_path / "to_label.csv", capsys=capsys)
    assert code != 0 and "--suggestions" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("flag", "value", "why"), [("--order", "file", "the order given"),
                                                 ("--labels", "labels.csv", "the --dots CSVs")])
def test_the_image_labelling_options_order_and_labels_are_refused_with_dots_in_one_line(
        untrained_detector, photo, tmp_path, capsys, flag, value, why):
    code, out, err = cli("label", photo, "--dots", tmp_path / "d.csv", "--run", untrained_detector, flag, value,
                         "--learn-again", capsys=capsys)
    assert code == 1 and out == "" and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{flag} is for labelling a pool" in err and why in err
    assert not (tmp_path / "d.csv").exists()


def test_a_point_run_without_dots_and_a_photo_given_as_dots_file_are_refused_in_one_line(untrained_detector, photo,
                                                                                        capsys):
    code, _, err = cli("label", photo.parent, "--run", untrained_detector, "--order", "file", "--learn-again",
                       capsys=capsys)
    assert code != 0 and "--dots" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("label", photo, "--dots", photo, "--run", untrained_detector, "--learn-again", capsys=capsys)
    assert code != 0 and "not a text CSV" in err and "unexpected" not in err and len(err.strip().splitlines()) == 1


def test_learning_again_cuts_the_reviewed_part_and_reproduces_the_detectors_settings(untrained_detector, photo,
                                                                                   tmp_path):
    dots = tmp_path / "new-dots.csv"
    session = session_on(photo, dots, classes=("blob",))
    session.add(0, 20, 30, "blob")
    session.add(0, 300, 300, "blob")
    session.review(0, (0, 100, 0, 384))
    photos, files, count = learning_photos(untrained_detector, session, tmp_path / "learn")
    assert len(photos) == 2 and photos[0].name == "train.png"  # the detector's own photo, then the new one
    assert photos[1].name == "new-0-0.png" and load_dots(files[1], 100, 384) == [("blob", 20.0, 30.0)]
    assert count == 25 + 1
    assert points_flags(RunFolder(untrained_detector).read_record().points.settings) == ["--crop", "64", "--label",
                                                                                         "animal"]


def test_a_learning_that_stopped_before_its_end_is_resumed(untrained_detector, photo, tmp_path):
    import shutil

    first = tmp_path / "runs" / "first"
    shutil.copytree(untrained_detector, first)
    session = session_on(photo, tmp_path / "d.csv")
    learner = dots_learner(first, session)
    assert "--out" in learner.planned() and f"{first}-learn1" in learner.planned()
    stopped = RunFolder(shutil.copytree(untrained_detector, tmp_path / "runs" / "first-learn1"))
    stopped.write_record(stopped.read_record().replace(status="interrupted"))
    stopped.last_checkpoint.parent.mkdir(parents=True, exist_ok=True)
    stopped.last_checkpoint.write_bytes(b"checkpoint")
    assert isinstance(learner, DotsLearner) and learner.planned() == f"cnnkit train --resume {stopped.path}"


@pytest.mark.slow
def test_learning_again_trains_a_detector_whose_proposals_the_page_then_shows(untrained_detector, photo, tmp_path):
    import shutil

    first = tmp_path / "runs" / "first"
    shutil.copytree(untrained_detector, first)
    session = open_dot_session(first, [photo], [tmp_path / "d.csv"], propose=False)
    session.add(0, 20, 30, "blob")
    learner = dots_learner(first, session, ["--epochs", "1", "--steps-per-epoch", "4", "--crop", "64",
                                            "--batch-size", "2", "--label", "animal"])
    learner.start()
    assert learner.wait()["state"] == "done", learner.status()["log"]
    assert RunFolder(tmp_path / "runs" / "first-learn1").read_record().status == "finished"
    assert session.propose is not None and session.generation == 1


def _serving(photo: Path, dots: Path, run: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = warm_cli.start("label", str(photo), "--dots", str(dots), "--run", str(run), "--port", str(port))
    wait_for_port(port, server)
    return server, port


@pytest.mark.slow  # two servers started in subprocesses, one SIGKILLed
def test_a_killed_dotting_server_loses_no_dot_and_a_new_one_resumes(untrained_detector, photo, tmp_path):
    dots = tmp_path / "new-dots.csv"
    server, port = _serving(photo, dots, untrained_detector)
    try:
        post(port, "/api/add", {"photo": 0, "row": 10, "col": 20, "class_name": "blob"})
        post(port, "/api/add", {"photo": 0, "row": 30, "col": 40, "class_name": "blob"})
    finally:
        server.kill()  # SIGKILL: nothing can be saved now
        server.wait(timeout=180)
    assert load_dots(dots, 384, 384) == [("blob", 10.0, 20.0), ("blob", 30.0, 40.0)]
    server, port = _serving(photo, dots, untrained_detector)
    try:
        answer = post(port, "/api/delete", {"photo": 0, "dot": 0})
        assert [(d["row"], d["col"]) for d in answer["dots"]] == [(30.0, 40.0)]
    finally:
        server.terminate()
        server.wait(timeout=180)  # a proposal tile under way ends first: a deadline for a hang, not a timing
