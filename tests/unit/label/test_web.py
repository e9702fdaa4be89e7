"""What the labelling and dotting servers share (``cnnkit.label.web``): the page, the state with learning again's
status, learning again refused where it is not offered, refusals in one line, the learner stopped (after the
session's own stop) when the server stops; and the pages' one copy of their common script, which parses."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from cnnkit.errors import CnnkitError
from cnnkit.label import dot_page, page
from cnnkit.label.web import LEARN_SECTION, SCRIPT, create_page_app, text

pytest.importorskip("fastapi", reason="cnnkit[serve] is not installed")
from fastapi.testclient import TestClient


class FakeLearner:
    def __init__(self, events: list[str]):
        self.events = events

    def status(self) -> dict:
        return {"state": "idle"}

    def start(self) -> None:
        self.events.append("start")

    def stop(self) -> None:
        self.events.append("learner stopped")


def app_with(learner, events: list[str]):
    def state() -> dict:
        if events and events[-1] == "refuse":
            raise CnnkitError("No state now.")
        return {"classes": ["a", "b"]}

    app, answered = create_page_app("<p>the page</p>", "title", "summary", state, learner, ("state", "learn"),
                                    stopping=lambda: events.append("session closed"))
    return app, answered


def test_the_page_the_state_and_learning_again_are_answered_and_the_learner_stops_after_the_session():
    events: list[str] = []
    app, answered = app_with(FakeLearner(events), events)
    with TestClient(app) as client:
        assert client.get("/").text == "<p>the page</p>"
        assert client.get("/api/state").json() == {"classes": ["a", "b"], "learn": {"state": "idle"}}
        assert client.post("/api/learn", json={}).json() == answered() and events == ["start"]
    assert events == ["start", "session closed", "learner stopped"]


def test_without_a_learner_learning_again_is_refused_in_one_line_and_the_state_says_none():
    events: list[str] = []
    app, _ = app_with(None, events)
    with TestClient(app) as client:
        assert client.get("/api/state").json()["learn"] is None
        answer = client.post("/api/learn", json={})
        assert answer.status_code == 400 and answer.json() == {"detail": "Learning again is not offered by this "
                                                                         "server."}
        events.append("refuse")
        assert client.get("/api/state").json() == {"detail": "No state now."}
    assert events == ["refuse", "session closed"]


def test_a_text_field_is_a_non_empty_string_or_refused_naming_it():
    assert text({"name": "x"}, "name") == "x" and text({}, "name", required=False) is None
    for body, required, found in (({"name": ""}, False, "got ''"), ({}, True, "got None"), ({"name": 3}, True,
                                  "got 3"), ([1], True, "got None")):
        with pytest.raises(CnnkitError, match=re.escape(f"The request needs `name`, a non-empty string; {found}.")):
            text(body, "name", required)


@pytest.mark.parametrize("module", [page, dot_page], ids=["label", "dots"])
def test_each_page_holds_the_common_script_once_and_parses(module, tmp_path):
    assert module.PAGE.count(SCRIPT) == 1 and module.PAGE.count(LEARN_SECTION) == 1
    script = module.PAGE.split("<script>")[1].split("</script>")[0]
    for name in ("const esc", "function call", "function showLearn", "const $ "):
        assert script.count(name) == 1, name
    node = shutil.which("node")
    if node is None:
        pytest.skip("no Node.js on this machine to parse the page's script")
    (tmp_path / "page.js").write_text(script, encoding="utf-8")
    checked = subprocess.run([node, "--check", str(tmp_path / "page.js")], capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stderr
